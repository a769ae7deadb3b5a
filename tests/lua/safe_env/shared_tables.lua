-- One module changing the tables every module is given (coroutine,
-- byte_span, this_fiber, the library tables, builtin modules and their
-- objects) changes only its own copies: the importer, later modules and the
-- loader itself keep working.
require '/fixtures/tamperer'
print('importer:', type(coroutine.resume), type(coroutine.wrap), type(byte_span.new),
  type(table.concat), math.floor(1.5), type(os.time))
print('resume works:', coroutine.resume(coroutine.create(function() return 'ok' end)))
this_fiber.yield()
local time = require 'time'
time.sleep(0)
print('time intact:', type(time.steady_clock.now), type(time.steady_timer.new))
local generic_error = require 'generic_error'
print('errors intact:', generic_error.EPERM.code == 1, type(generic_error.EINVAL))
local ok, e = pcall(setfenv, spawn, {})
print('EPERM still compares:', e == generic_error.EPERM)
local system = require 'system'
system.out:write_some('importer writes\n')
print('later require works:', require('/fixtures/victim') ~= nil)
-- the same module table each time within one module; a copy per module
print('same table in one module:', require 'time' == time, require 'system' == system)
