-- options: --memory-limit 16M
-- exit: 1
-- The script keeps every byte up to its memory limit, so even the
-- runtime's own bookkeeping cannot allocate: the VM is closed with the
-- spec's LUA_ERRMEM report (spec/core.md §8) and the process exits with 1,
-- never with an abort.
-- a chain of small tables: nothing larger than one of them is left free
-- (twice: after a refusal the heap may take a small reserve more, for the
-- code that handles the error; the second fill takes that too)
-- The fiber is spawned first: after the fills the main fiber's own code
-- allocates nothing, what runs out is the scheduler making its coroutine.
spawn(function() end)
pcall(function() while true do hog = { hog } end end)
pcall(function() while true do hog = { hog } end end)
this_fiber.yield()
print('unreachable')
