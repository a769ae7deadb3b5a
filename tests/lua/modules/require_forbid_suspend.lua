-- require is a suspending operation: refused in a forbid-suspend block
this_fiber.forbid_suspend()
local ok, e = pcall(require, '/fixtures/simple')
this_fiber.allow_suspend()
print('forbid-suspend:', ok, tostring(e))
print('imports fine afterwards:', require('/fixtures/simple').value)
