-- a raising cleanup handler inside a C callback (where the fiber cannot
-- yield) still closes the VM: the error reaches the caller, and the VM ends
-- as soon as the fiber next suspends
spawn(function()
  this_fiber.yield()
  print('other fiber never resumes')
end)
local ok, err = pcall(table.sort, { 2, 1 }, function(a, b)
  scope(function()
    scope_cleanup_push(function() error('handler failed') end)
  end)
  return a < b
end)
print('caught:', ok, err)
this_fiber.yield()
print('not reached')
