-- options: --memory-limit 16M
-- coroutine.*, string.gsub, fiber handle methods and this_fiber's
-- functions besides yield, and builtin modules such as mutex, load their
-- code on first use (lazy core chunks):
-- at the memory limit that first use fails with a catchable "not enough
-- memory" and leaves nothing half loaded; once memory is freed all work.
-- (required before the limit is reached, as in lazy_code_at_limit.lua)
local _ = require "inbox"
local fiber = spawn(function() return 'joined' end)
-- The heap is filled again before each first use: a failed load's
-- garbage (the part of a chunk loaded before the refusal) is collected by
-- the runtime after the error, which leaves room for the next one. Filled
-- with one small table at a time (a linked list, no array that doubles),
-- so every fill stops right at the limit, whatever the heap held before.
local hog = {}
local function grow() while true do hog = { hog } end end
local function fill()
  -- (twice: after a refusal the heap may take a small reserve more, for the
  -- code that handles the error; the second fill takes that too)
  pcall(grow)
  pcall(grow)
end
local function wrap_first() return coroutine.wrap(function() return 'ran' end) end
local function gsub_first() return string.gsub('ab', '%w', string.upper) end
local function join_first() return fiber:join() end
local function forbid_first() return this_fiber.forbid_suspend end
local function mutex_first() return require 'mutex' end
fill()
local wrap_ok, wrap_err = pcall(wrap_first)
fill()
local gsub_ok, gsub_err = pcall(gsub_first)
fill()
local join_ok, join_err = pcall(join_first)
fill()
local forbid_ok, forbid_err = pcall(forbid_first)
fill()
local mutex_ok, mutex_err = pcall(mutex_first)
hog = nil
collectgarbage()
local function memory_error(e)
  return tostring(e):find('not enough memory', 1, true) ~= nil
end
print('wrap at the limit', wrap_ok, memory_error(wrap_err))
print('gsub at the limit', gsub_ok, memory_error(gsub_err))
print('join at the limit', join_ok, memory_error(join_err))
print('this_fiber at the limit', forbid_ok, memory_error(forbid_err))
print('mutex at the limit', mutex_ok, memory_error(mutex_err))
print('wrap after', coroutine.wrap(function(a) return coroutine.yield(a) end)('ran'))
print('gsub after', ('ab'):gsub('%w', string.upper))
print('join after', fiber.joinable, fiber:join())
this_fiber.forbid_suspend()
this_fiber.allow_suspend()
print('this_fiber after', this_fiber.is_main)
print('mutex after', type(require('mutex').new))
