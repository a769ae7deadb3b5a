-- a new fiber starts with fresh local storage and counters at 0
this_fiber.local_.x = 'main value'
this_fiber.forbid_suspend()
this_fiber.disable_interruption()
local f = spawn(function()
  print('local x:', this_fiber.local_.x)
  print(pcall(this_fiber.allow_suspend))
  print(pcall(this_fiber.restore_interruption))
  this_fiber.yield()   -- suspension allowed here
  print('child yielded fine')
end)
this_fiber.allow_suspend()
this_fiber.restore_interruption()
f:join()
