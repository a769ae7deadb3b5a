-- coroutine.running: nil in a fiber's own thread, the coroutine otherwise
print(coroutine.running())
spawn(function() print('spawned:', coroutine.running()) end):join()
local co
co = coroutine.create(function()
  print('in coroutine:', rawequal(coroutine.running(), co))
end)
coroutine.resume(co)
