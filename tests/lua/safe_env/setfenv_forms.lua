-- setfenv in every form: levels, functions, 0 (the thread), inside
-- coroutines and fibers; runtime functions and frames refuse with EPERM.
local EPERM = require('generic_error').EPERM
local function show(what, ok, e)
  if ok then print(what, 'ok') else print(what, e == EPERM and 'EPERM' or tostring(e)) end
end
-- a user function by value and by level
local function f() return marker end
show('function', pcall(setfenv, f, { marker = 'by value' }))
print(f())
local function set_mine() setfenv(1, { marker = 'by level', print = print }) print(marker) end
set_mine()
local function set_caller() setfenv(2, { marker = 'caller' }) end
local function g() set_caller() return marker end
print(g())
-- runtime functions and runtime frames
show('spawn', pcall(setfenv, spawn, {}))
show('require', pcall(setfenv, require, {}))
show('print', pcall(setfenv, print, {}))
show('getfenv', pcall(setfenv, getfenv, {}))
show('coroutine.wrap', pcall(setfenv, coroutine.wrap, {}))
show('this_fiber.yield', pcall(setfenv, this_fiber.yield, {}))
show('C function', pcall(setfenv, string.format, {}))
show('C function, called from Lua', pcall(function() setfenv(string.format, {}) end))
-- level 1 seen from setfenv under pcall is pcall's frame (a runtime one)
show('level 1 under pcall', pcall(setfenv, 1, {}))
show('level 2 under pcall', pcall(setfenv, 2, {}))
-- errors in the arguments
show('no table', pcall(setfenv, f, 3))
show('bad level', pcall(setfenv, 100, {}))
show('negative level', pcall(setfenv, -1, {}))
show('string', pcall(setfenv, 'x', {}))
-- 0: the running thread's globals, in a fiber and in a coroutine
spawn(function()
  local t = { print = print, getfenv = getfenv }
  setfenv(0, t)
  print('fiber thread env replaced:', getfenv(0) == t)
end):join()
print('main thread env unchanged:', getfenv(0) == _G)
local co = coroutine.wrap(function()
  local t = {}
  setfenv(0, t)
  return getfenv(0) == t
end)
print('coroutine thread env replaced:', co(), getfenv(0) == _G)
-- a fiber reusing the coroutine of the fiber above starts with fresh globals
spawn(function() print('next fiber env:', getfenv(0) == _G) end):join()
