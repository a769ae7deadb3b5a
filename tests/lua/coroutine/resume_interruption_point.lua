-- resume checks for a pending interruption before running the coroutine;
-- interruptibility belongs to the fiber
local f
f = spawn(function()
  local co = coroutine.create(function()
    f:interrupt()
    print('inside coroutine: no raise yet')
    coroutine.yield('yielded')
  end)
  print('first resume:', coroutine.resume(co))
  coroutine.resume(co)  -- interruption point: raises before resuming
  print('not reached')
end)
f:join()
print('caught:', f.interruption_caught)

local g = spawn(function()
  local co = coroutine.create(function() print('not run') end)
  coroutine.resume(co)
end)
g:interrupt()
g:join()
print('caught:', g.interruption_caught)
