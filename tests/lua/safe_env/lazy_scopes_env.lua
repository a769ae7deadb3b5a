-- scope, scope_cleanup_push, scope_cleanup_pop, xpcall and spawn are stubs
-- that load their code on first use (lua/core/scopes.lua, fibers.lua): it
-- runs with the runtime's globals, never those of the module that called
-- first (replaced here), errors count levels from the user's call as
-- before, and neither stub nor loaded code hands out the runtime's env.
local print, tostring, select, getfenv, setfenv, pcall = print, tostring, select, getfenv, setfenv, pcall
type, error, setmetatable, select, unpack, tostring, newproxy, getmetatable =
  nil, nil, nil, nil, nil, nil, nil, nil
local out = {}
scope(function()
  scope_cleanup_push(function() out[#out + 1] = 'cleanup' end)
  out[#out + 1] = 'body'
end)
print(out[1], out[2])
print('xpcall', xpcall(function(a) return a * 2 end, print, 21))
print('xpcall error', xpcall(function() local x = nil; return x.y end,
  function(e) return 'handled' end))
local f = spawn(function(a, b) return a + b end, 1, 2)
print('join', f:join())
-- levels: the position is the caller's line
print(pcall(function() spawn(1) end))
print(pcall(function() scope_cleanup_push(1) end))
print(pcall(function() scope_cleanup_pop() end))
-- no environment leaks through the stubs or what they call
print('envs', getfenv(scope), getfenv(xpcall), getfenv(spawn), getfenv(scope_cleanup_push))
print('setfenv', pcall(setfenv, scope, {}))
