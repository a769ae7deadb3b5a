-- _CONTEXT is "main" in the entry script and "" in imported modules;
-- _FILE is the absolute path of the module's own file (a string in luring)
print(_CONTEXT)
print(type(_FILE), _FILE:sub(1, 1) == '/', (_FILE:match('[^/]+/[^/]+$')))
local m = require '/fixtures/context_mod'
print(string.format('%q', m.context))
print((m.file:match('[^/]+/[^/]+/[^/]+$')))
require './helper_mod'
-- module fibers report the VM main thread id
print('module fiber id is the main id:', require('/fixtures/id_mod').id == this_fiber.id)
