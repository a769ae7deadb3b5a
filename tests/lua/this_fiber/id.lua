-- id is a "0x..." string, stable per fiber, distinct between fibers
local main_id = this_fiber.id
print(type(main_id), main_id:match('^0x%x+$') ~= nil)
print(main_id == this_fiber.id)
local child_id
local f = spawn(function()
  child_id = this_fiber.id
  print('child', child_id)
end)
f:join()
print('main', main_id)
print(child_id ~= main_id)
