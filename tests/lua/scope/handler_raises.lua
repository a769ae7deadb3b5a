-- a raising cleanup handler closes the VM at once
spawn(function()
  this_fiber.yield()
  print('other fiber never resumes')
end)
scope(function()
  scope_cleanup_push(function() error('handler failed') end)
end)
print('not reached')
