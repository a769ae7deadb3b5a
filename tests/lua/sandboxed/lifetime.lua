-- A sandbox lives no longer than the VM that spawned it: this VM ends
-- while its sandboxed actor waits on a channel it still holds open, and
-- the process exits (the sandbox was killed; otherwise its host-side
-- relay would keep the process waiting for it). Also from a worker VM.
keep = spawn_vm{ module = '/fixtures/waits', sandbox = {} }
keep2 = spawn_vm{ module = '/fixtures/waits', sandbox = {}, monitor = true }
spawn_vm('/fixtures/spawns_and_ends')
print('main ends')
