-- Recursion that goes through C (nested coroutines, string.gsub callbacks)
-- used to overflow the thread's stack and kill the process. The runtime
-- counts it and fails with 'C stack overflow' past 200 levels (as Lua 5.1);
-- recursion that stays in Lua ends with LuaJIT's own 'stack overflow'.
-- Every case must end as a catchable error, and the VM goes on afterwards.
local depth = 0
local function deepest(fn)
  depth = 0
  local ok, err = pcall(fn)
  return ok, err, depth
end
local function wrap(n)
  depth = n
  return coroutine.wrap(function() return wrap(n + 1) end)()
end
print('wrap', deepest(function() return wrap(0) end))
local function resume(n)
  depth = n
  local co = coroutine.create(function() return resume(n + 1) end)
  local ok, err = coroutine.resume(co)
  if not ok then error(err, 0) end
  return err
end
print('resume', deepest(function() return resume(0) end))
-- resume answers false at the limit, as Lua 5.1 does
local function resume_quiet(n)
  depth = n
  return coroutine.resume(coroutine.create(function() return resume_quiet(n + 1) end))
end
local function last_of(...) return select(select('#', ...), ...) end
print('resume results', last_of(resume_quiet(0)), depth)
local function gsub_fn(n)
  depth = n
  return (('a'):gsub('.', function() return gsub_fn(n + 1) end))
end
print('gsub function', deepest(function() return gsub_fn(0) end))
local repl
repl = setmetatable({}, { __index = function(_, k)
  depth = depth + 1
  return (string.gsub(k, '.', repl))
end })
print('gsub table', deepest(function() return ('a'):gsub('.', repl) end))
-- Lua-only recursion: LuaJIT's stack limit (depths depend on frame sizes)
-- (positions inside the runtime's own chunks are dropped: they move)
local function only_ok_err(ok, err) return ok, (err:gsub('^%[string "%?%w*"%]:%d+: ', '')) end
local function plain(n) return 1 + plain(n + 1) end
print('plain', only_ok_err(pcall(plain, 0)))
local function nested_pcall(n)
  local ok, err = pcall(nested_pcall, n + 1)
  if not ok then error(err, 0) end
end
print('pcall', only_ok_err(pcall(nested_pcall, 0)))
local function nested_xpcall(n)
  local ok, err = xpcall(nested_xpcall, function(e) return e end, n + 1)
  if not ok then error(err, 0) end
end
print('xpcall', only_ok_err(pcall(nested_xpcall, 0)))
local function nested_scope(n) scope(function() nested_scope(n + 1) end) end
print('scope', only_ok_err(pcall(nested_scope, 0)))
local chain = setmetatable({}, {})
getmetatable(chain).__index = function(t, k) return t[k .. '.'] end
print('__index', only_ok_err(pcall(function() return chain.x end)))
local named
named = setmetatable({}, { __tostring = function() return tostring(named) .. '' end })
print('__tostring', only_ok_err(pcall(tostring, named)))
local function sort_rec(n)
  table.sort({ 2, 1 }, function(a, b) sort_rec(n + 1) return a < b end)
end
print('sort', only_ok_err(pcall(sort_rec, 0)))
-- the gsub wrapper keeps LuaJIT's own argument and pattern errors
print(pcall(function() local r = ('a'):gsub(nil, print) return r end))
print(pcall(function() local r = string.gsub(nil, 'a', print) return r end))
print(pcall(function() local r = ('a'):gsub('(', print) return r end))
print(pcall(function() local r = ('a'):gsub('.', print, {}) return r end))
print(pcall(function() local r = ('a'):gsub('.', true) return r end))
print(pcall(string.gsub, 'a', '.', true))
print(('abc'):gsub('.', { a = 1 }, '2'))
print(('abc'):gsub('%w', '%0%0'))
print(string.gsub(123, 2, function(d) return d + 1 end))
-- the depth count is back to zero: a fresh nesting gets the full 200 levels
print('wrap again', deepest(function() return wrap(0) end))
spawn(function() print('fiber', deepest(function() return gsub_fn(0) end)) end):join()
