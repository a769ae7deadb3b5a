-- options: --memory-limit 16M
-- exit: 1
-- Output printed before the runtime itself runs out of memory reaches
-- stdout, ahead of the LUA_ERRMEM report (the forced close drains the
-- output queue like any other end of the VM).
print('printed before')
pcall(function() while true do hog = { hog } end end)
spawn(function() end)
this_fiber.yield()
print('unreachable')
