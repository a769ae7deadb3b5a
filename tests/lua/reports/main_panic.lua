-- exit: 1
-- main fiber panic: report format; other fibers die with the VM
spawn(function() this_fiber.yield() print('never printed') end)
print('before')
local function fail() error('main failure') end
fail()
