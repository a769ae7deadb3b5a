-- a spawned fiber's root handlers run on success and on error, before the
-- error is stored/reported
local f = spawn(function()
  scope_cleanup_push(function() print('root handler 1') end)
  scope_cleanup_push(function() print('root handler 2') end)
  print('body')
  return 'v'
end)
print(f:join())
local g = spawn(function()
  scope_cleanup_push(function() print('root handler of failing fiber') end)
  error('boom', 0)
end)
g:detach()
this_fiber.yield()
print('main end')
