-- getfenv(0) is always the current module's globals: in the main chunk, in
-- spawned fibers, in user coroutines, in fibers that reuse a pooled coroutine
-- a module fiber ran before, and load() without an env uses them too.
MARK = 'main'
local function saw(where, g) print(where, g == _G, rawget(g, 'MARK'), g.io, g.os.execute) end
saw('main chunk:', getfenv(0))
spawn(function() saw('spawned fiber:', getfenv(0)) end):join()
coroutine.wrap(function() saw('coroutine:', getfenv(0)) end)()
spawn(function()
  coroutine.wrap(function() saw('coroutine in fiber:', getfenv(0)) end)()
end):join()
local m = require '/fixtures/env_mod'
print('module fiber/coroutine/load saw:', m.fiber_saw, m.co_saw, m.load_saw)
-- these fibers take coroutines the module's fibers used
for i = 1, 3 do
  spawn(function() saw('pooled fiber ' .. i .. ':', getfenv(0)) end):join()
end
spawn(function() print('load in pooled fiber:', load('return MARK')()) end):join()
-- setfenv(0) changes this thread's globals and what new fibers inherit
local mine = { MARK = 'replaced', print = print, getfenv = getfenv }
setfenv(0, mine)
print('after setfenv(0):', getfenv(0) == mine)
spawn(function() print('fiber inherits the new thread env:', getfenv(0) == mine) end):join()
