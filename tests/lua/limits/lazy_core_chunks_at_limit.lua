-- options: --memory-limit 16M
-- coroutine.*, string.gsub, spawn and fiber handles, this_fiber's
-- functions besides yield, scope, scope_cleanup_push/pop and xpcall, the user's load, loadstring, getfenv, setfenv
-- and newproxy, and builtin modules such as mutex, load their
-- code on first use (lazy core chunks):
-- at the memory limit that first use fails with a catchable "not enough
-- memory" and leaves nothing half loaded; once memory is freed all work.
-- (required before the limit is reached, as in lazy_code_at_limit.lua)
local _ = require "inbox"
-- Every probe runs on a full heap: garbage (an earlier probe's half-made
-- chunk) is collected first, then a chain of small tables takes all that
-- is left, twice (after a refusal the heap may take a small reserve more,
-- for the code that handles the error; the second fill takes that too).
-- Nothing a probe needs is made after the fill but what it loads.
local hog
local function grow() while true do hog = { hog } end end
local function at_limit(f, ...)
  collectgarbage()
  pcall(grow)
  pcall(grow)
  return pcall(f, ...)
end
local wrap_body = function() return 'ran' end
local replace = function(c) return c end
local body = function() return 'joined' end
local forbid = function() return this_fiber.forbid_suspend end
local wrap_ok, wrap_err = at_limit(coroutine.wrap, wrap_body)
local gsub_ok, gsub_err = at_limit(string.gsub, 'ab', '%w', replace)
-- (spawn and this_fiber share their chunk: each is probed as its first use)
local forbid_ok, forbid_err = at_limit(forbid)
local spawn_ok, spawn_err = at_limit(spawn, body)
local mutex_ok, mutex_err = at_limit(require, 'mutex')
local scope_ok, scope_err = at_limit(scope, body)
local load_ok, load_err = at_limit(loadstring, 'return 1')
hog = nil
collectgarbage()
local function memory_error(e)
  return tostring(e):find('not enough memory', 1, true) ~= nil
end
print('wrap at the limit', wrap_ok, memory_error(wrap_err))
print('gsub at the limit', gsub_ok, memory_error(gsub_err))
print('this_fiber at the limit', forbid_ok, memory_error(forbid_err))
print('spawn at the limit', spawn_ok, memory_error(spawn_err))
print('mutex at the limit', mutex_ok, memory_error(mutex_err))
print('scope at the limit', scope_ok, memory_error(scope_err))
print('loadstring at the limit', load_ok, memory_error(load_err))
print('wrap after', coroutine.wrap(function(a) return coroutine.yield(a) end)('ran'))
print('gsub after', ('ab'):gsub('%w', string.upper))
local fiber = spawn(body)
print('join after', fiber.joinable, fiber:join())
this_fiber.forbid_suspend()
this_fiber.allow_suspend()
print('this_fiber after', this_fiber.is_main)
print('mutex after', type(require('mutex').new))
print('scope after', pcall(scope, function() scope_cleanup_push(body) end))
print('xpcall after', xpcall(body, print))
print('loadstring after', loadstring('return 1')(), getfenv(1) == _G, newproxy() ~= nil)
print('setfenv after', pcall(setfenv, print, {}))
