-- a collected suspended coroutine never runs its pending handlers
local co = coroutine.create(function()
  scope_cleanup_push(function() print('NOT printed') end)
  coroutine.yield()
end)
coroutine.resume(co)
co = nil
collectgarbage()
collectgarbage()
print('collected')
