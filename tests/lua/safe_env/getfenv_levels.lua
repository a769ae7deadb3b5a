-- Walking getfenv over every stack level, from every context user code runs
-- in, only ever yields nil (a runtime or library frame) or the module's own
-- globals; never the runtime's globals or another module's.
local function classify(e)
  if e == nil then return 'nil' end
  if e == _G then return '_G' end
  return 'LEAK'
end
local function walk(where)
  local kinds, n = {}, 0
  for level = 0, 40 do
    local ok, e = pcall(getfenv, level)
    if not ok then break end
    n = n + 1
    kinds[classify(e)] = true
  end
  local direct = {}
  for level = 0, 40 do
    local ok, e = pcall(function() return getfenv(level) end)
    if not ok then break end
    direct[classify(e)] = true
  end
  print(where, n > 2, kinds.LEAK or direct.LEAK or 'no leak', kinds._G, direct._G)
end
walk('main chunk')
spawn(function() walk('spawned fiber') end):join()
coroutine.wrap(function() walk('coroutine.wrap') end)()
local co = coroutine.create(function() walk('coroutine.create') end)
coroutine.resume(co)
xpcall(function() error('x') end, function() walk('xpcall handler') end)
scope(function() walk('scope') end)
scope(function() scope_cleanup_push(function() walk('cleanup handler') end) end)
pcall(pcall, pcall, walk, 'nested pcall')
require '/fixtures/walk_mod'
-- invalid levels and arguments fail like Lua's getfenv
print(pcall(getfenv, -1))
print(pcall(getfenv, 1000))
print(pcall(getfenv, 'x'))
print(pcall(getfenv, coroutine.create(print)))
print(pcall(getfenv, 1.5))
