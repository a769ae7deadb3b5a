-- signal sets: raise to self and wait; add/remove/clear; cancel();
-- interruption; bad signals
local system = require 'system'
local S = system.signal
print('constants:', S.SIGINT, S.SIGUSR1, S.SIGTERM, S.SIGKILL)

local set = system.signal.set.new(S.SIGUSR1, S.SIGUSR2)
print(getmetatable(set))
S.raise(S.SIGUSR1)
print('waited:', set:wait())
-- a signal raised before the wait is kept until it is waited for
S.raise(S.SIGUSR2)
this_fiber.yield()
print('pending then waited:', set:wait())
-- system.kill on our own pid works the same
system.kill(system.getpid(), S.SIGUSR1)
print('kill self:', set:wait())

-- remove and add: the set sees only what it holds
set:remove(S.SIGUSR1)
set:add(S.SIGHUP)
S.raise(S.SIGHUP)
print('after remove/add:', set:wait())
set:clear()
set:add(S.SIGUSR2)
S.raise(S.SIGUSR2)
print('after clear/add:', set:wait())

-- cancel() aborts a pending wait with operation_aborted
local f = spawn(function()
  local ok, e = pcall(set.wait, set)
  print('cancelled wait:', ok, tostring(e.category), tostring(e))
end)
this_fiber.yield()
set:cancel()
f:join()

-- interruption
f = spawn(function()
  local ok, e = pcall(set.wait, set)
  print('interrupted wait:', ok, tostring(e))
end)
this_fiber.yield()
f:interrupt()
f:join()
-- nothing was lost: the next signal is still seen
S.raise(S.SIGUSR2)
print('after interruption:', set:wait())

-- two sets: a signal goes to one of them
local other = system.signal.set.new(S.SIGWINCH)
S.raise(S.SIGWINCH)
print('second set:', other:wait())

-- errors: signals a set cannot wait for, wrong types
for _, bad in ipairs{ S.SIGKILL, S.SIGSTOP, S.SIGSEGV, S.SIGPIPE, 0, 65 } do
  local ok, e = pcall(set.add, set, bad)
  print('add', bad, ok, tostring(e), e.arg)
end
print('add string:', pcall(set.add, set, 'SIGUSR1'))
print('new bad: arg', select(2, pcall(system.signal.set.new, S.SIGUSR1, S.SIGKILL)).arg)
print('new type:', pcall(system.signal.set.new, 'x'))
print('wait on non-set:', pcall(set.wait, {}))
print('raise type:', pcall(S.raise, 'x'))
print('raise bad:', pcall(S.raise, 99))
-- ignore (master VM): an ignored SIGUSR1 with no set is lost, whenever
-- the runtime gets to it (the process is not killed: exit status 0)
S.ignore(S.SIGUSR1)
S.raise(S.SIGUSR1)
S.default(S.SIGUSR2)
print('ignore/default bad:', pcall(S.ignore, S.SIGKILL))
print('done')
