-- cleanup handlers may suspend
spawn(function() print('other fiber runs while the handler waits') end)
scope(function()
  scope_cleanup_push(function()
    this_fiber.yield()
    print('handler resumed')
  end)
end)
print('after scope')
