-- Every function user code can reach (globals, library tables, builtin
-- modules, runtime objects' methods) shows no environment but the caller's
-- own (LuaJIT answers the thread's globals for C functions; runtime
-- functions written in Lua answer nil), and setfenv refuses to change it.
local seen, funcs, names = {}, {}, {}
local function walk(v, path, depth)
  if depth > 4 or seen[v] then return end
  local t = type(v)
  if t == 'function' then
    seen[v] = true
    funcs[#funcs + 1] = v
    names[v] = path
  elseif t == 'table' then
    seen[v] = true
    for k, x in pairs(v) do walk(x, path .. '.' .. tostring(k), depth + 1) end
  end
end
walk(_G, '_G', 0)
for _, id in ipairs({ 'time', 'mutex', 'recursive_mutex', 'condition_variable',
                      'future', 'generic_error', 'system' }) do
  walk(require(id), id, 0)
end
local m = require('mutex').new()
for _, k in ipairs({ 'lock', 'unlock', 'try_lock' }) do walk(m[k], 'mutex:' .. k, 0) end
local h = spawn(function() end)
for _, k in ipairs({ 'join', 'detach', 'interrupt' }) do walk(h[k], 'fiber:' .. k, 0) end
h:join()
for _, k in ipairs({ 'yield', 'forbid_suspend', 'allow_suspend', 'disable_interruption',
                     'restore_interruption' }) do walk(this_fiber[k], 'this_fiber.' .. k, 0) end
local e = require('generic_error').EPERM
walk(e.togeneric, 'error:togeneric', 0)
walk(e.category.message, 'category:message', 0)
local promise, future = require('future').new()
walk(promise.set_value, 'promise:set_value', 0)
walk(future.get, 'future:get', 0)
local span = byte_span.new(1)
walk(span.slice, 'span:slice', 0)
walk(('').upper, 'string method upper', 0)

local visible, accepted = {}, {}
for _, f in ipairs(funcs) do
  local e = getfenv(f)
  if e ~= nil and e ~= _G then visible[#visible + 1] = names[f] end
  local ok = pcall(setfenv, f, {})
  if ok then accepted[#accepted + 1] = names[f] end
end
table.sort(visible)
table.sort(accepted)
print('functions checked > 100:', #funcs > 100)
print('getfenv shows a foreign env:', table.concat(visible, ' '))
print('setfenv accepted:', table.concat(accepted, ' '))
-- the refusal is EPERM
local ok, err = pcall(setfenv, spawn, {})
print(ok, err == require('generic_error').EPERM, tostring(err))
print(getfenv(spawn), getfenv(require), getfenv(print), getfenv(pcall), getfenv(this_fiber.yield))
-- a user function's env works as in Lua
local function mine() return x end
print(getfenv(mine) == _G, setfenv(mine, { x = 'set' }) == mine, mine())
