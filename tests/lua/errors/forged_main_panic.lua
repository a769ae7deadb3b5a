-- exit: 1
-- the main fiber failing with a forged error code whose metamethods raise
-- still gets its report, and the VM ends normally
spawn(function() this_fiber.yield() print('other fiber ran') end)
this_fiber.yield()
error(setmetatable({}, {
  __metatable = 'error_code',
  __index = function() error('index ran', 0) end,
  __tostring = function() error('tostring ran', 0) end,
}), 0)
