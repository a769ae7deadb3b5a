-- options: --memory-limit 16M
-- exit: 1
-- Output printed before the runtime itself runs out of memory reaches
-- stdout, ahead of the LUA_ERRMEM report (the forced close drains the
-- output queue like any other end of the VM).
-- The fiber is spawned before the memory is full and the heap is filled
-- twice (the second fill takes the reserve a refusal leaves for the code
-- that handles it): what runs out is then the scheduler making that
-- fiber's coroutine, never the main fiber's own code (which would end
-- in a main fiber panic instead, at some limits).
print('printed before')
spawn(function() end)
pcall(function() while true do hog = { hog } end end)
pcall(function() while true do hog = { hog } end end)
this_fiber.yield()
print('unreachable')
