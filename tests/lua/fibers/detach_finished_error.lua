-- detaching a fiber that already failed prints the panic report right away
local f = spawn(function() error('failed earlier', 0) end)
this_fiber.yield()
print('before detach')
f:detach()
print('after detach')
