-- panic report message: other values (numbers, plain tables, nil) print ''
spawn(function() error(42, 0) end):detach()
spawn(function() error({ message = 'ignored' }) end):detach()
spawn(function() error() end):detach()
-- a table that only looks like an error code is not one
spawn(function() error({ code = 22, category = 'generic' }) end):detach()
this_fiber.yield()
print('end')
