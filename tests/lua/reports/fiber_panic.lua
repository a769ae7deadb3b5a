-- fiber panic report, then the VM keeps running
local function inner() error('inner failure') end
spawn(function()
  inner()
end)
this_fiber.yield()
print('main continues')
