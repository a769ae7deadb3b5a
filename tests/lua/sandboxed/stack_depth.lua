-- Deep recursion inside a sandbox (through C: coroutines, gsub callbacks,
-- __tostring, sort comparators; and through Lua alone) ends as a catchable
-- error, never by a signal: the sandboxed VM runs on the entry's own
-- thread when its stack may grow as far as a VM thread's, on a thread of
-- its own otherwise (tests/sandboxed_vm.rs runs this with a low hard
-- stack limit too).
local inbox = require 'inbox'
spawn_vm{ module = '/fixtures/stack_depth', sandbox = {}, monitor = true }
local notice = inbox:receive()
print(notice.monitor, notice.reason, notice.code)
