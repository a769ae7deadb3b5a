-- with interruption disabled pcall runs normally
local f
f = spawn(function()
  f:interrupt()
  this_fiber.disable_interruption()
  print(pcall(function() return 'ran' end))
  print(xpcall(function() error('e', 0) end, function(e) return 'h:' .. e end))
  this_fiber.restore_interruption()
end)
f:join()
print('caught:', f.interruption_caught)
