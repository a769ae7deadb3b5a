-- _CONTEXT is "main" in the entry script and "" in imported modules;
-- _FILE is the absolute path of the module's own file, a filesystem.path
-- (the filesystem module is loaded when the path is first used)
print(_CONTEXT)
print(getmetatable(_FILE), tostring(_FILE):sub(1, 1) == '/', (tostring(_FILE):match('[^/]+/[^/]+$')))
print(_FILE.is_absolute, tostring(_FILE.filename), _FILE == require('filesystem').path.new(tostring(_FILE)))
local m = require '/fixtures/context_mod'
print(string.format('%q', m.context))
print((tostring(m.file):match('[^/]+/[^/]+/[^/]+$')))
require './helper_mod'
-- module fibers report the VM main thread id
print('module fiber id is the main id:', require('/fixtures/id_mod').id == this_fiber.id)
