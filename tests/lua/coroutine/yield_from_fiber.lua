-- coroutine.yield from the fiber's own thread raises bad_coroutine
local ok, e = pcall(coroutine.yield, 1)
print(ok, e.code, tostring(e.category), tostring(e))
spawn(function()
  local ok2, e2 = pcall(coroutine.yield)
  print('spawned:', ok2, tostring(e2))
end):join()
