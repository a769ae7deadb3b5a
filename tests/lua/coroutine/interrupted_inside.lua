-- interrupting a fiber suspended inside a coroutine raises in the coroutine
local time = require 'time'
local f = spawn(function()
  local co = coroutine.create(function()
    time.sleep(1000)
  end)
  local ok, e = coroutine.resume(co)
  print('resume returned', ok, tostring(e))
  print(coroutine.status(co))
end)
this_fiber.yield()
f:interrupt()
f:join()
print('caught:', f.interruption_caught)
