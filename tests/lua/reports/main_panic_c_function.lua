-- exit: 1
-- errors raised by C-like builtins show the Lua caller line first
print('start')
this_fiber.allow_suspend()
