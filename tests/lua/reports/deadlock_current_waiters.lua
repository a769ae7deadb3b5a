-- the deadlock report names only objects fibers are blocked on at the end,
-- in the order they got their waiters; a mutex whose waiters all left is
-- not named
local mutex = require 'mutex'
local future = require 'future'
local m1, m2, m3 = mutex.new(), mutex.new(), mutex.new()
local p, fu = future.new()
print('m1', m1)
print('m2', m2)
print('fu', fu)
print('m3', m3)
m1:lock()
spawn(function() m1:lock() m1:unlock() end)
this_fiber.yield()
m1:unlock()
this_fiber.yield()
m2:lock()
spawn(function() m2:lock() end)
spawn(function() fu:get() end)
m3:lock()
spawn(function() m3:lock() end)
promise = p -- kept alive: the future is not broken
