-- local_ is a per-fiber table; new fibers start with an empty one
local l = this_fiber.local_
print(type(l), rawequal(l, this_fiber.local_))
l.name = 'main'
local f = spawn(function()
  print('child sees', this_fiber.local_.name)
  this_fiber.local_.name = 'child'
  this_fiber.yield()
  print('child still', this_fiber.local_.name)
end)
this_fiber.yield()
print('main still', this_fiber.local_.name)
f:join()
