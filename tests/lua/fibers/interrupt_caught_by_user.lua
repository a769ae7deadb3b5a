-- a fiber that catches its interruption ends normally: caught is false
local f = spawn(function()
  local ok, e = pcall(function()
    this_fiber.yield() -- queued when interrupted: returns normally
    print('first yield returned')
    this_fiber.yield() -- the pending interruption is raised here
  end)
  print('caught inside:', ok, tostring(e))
  return 'recovered'
end)
this_fiber.yield()   -- the child is now inside pcall, suspended in yield
f:interrupt()
print(f:join())
print('interruption_caught:', f.interruption_caught)
