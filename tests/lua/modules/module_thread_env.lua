-- A module's value is its thread's globals at the end of its body (also
-- after setfenv(0)). Coroutines and fibers take the thread globals of the
-- thread that creates them (Lua 5.1's rule), while their function reads
-- globals from its own env: a function of the module called by the
-- importer runs with the module's globals on a thread of the importer's.
MARK = 'main'
local m = require '/fixtures/setfenv0_mod'
print('module value is the setfenv(0) table:', m.replaced, m.MARK)
local maker = require '/fixtures/coroutine_maker'
local co = maker.make()
print('coroutine made for the importer:', coroutine.resume(co))
print('coroutine made for the importer:', coroutine.resume(co))
print('fiber spawned for the importer:', maker.spawn_reader():join())
print('coroutine made by the module body:', coroutine.resume(maker.body_co))
print('importer still sees its own:', getfenv(0).MARK, load('return MARK')())
