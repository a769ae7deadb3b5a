-- user coroutines running inside a fiber share its local_ table
this_fiber.local_.v = 1
local co = coroutine.create(function()
  print('in coroutine', this_fiber.local_.v)
  this_fiber.local_.v = 2
  coroutine.yield()
  print('in coroutine again', this_fiber.local_.v)
end)
coroutine.resume(co)
print('fiber sees', this_fiber.local_.v)
this_fiber.local_.v = 3
coroutine.resume(co)
