-- detach(): a worker VM spawns two sandboxes, detaches one and ends. The
-- supervised one is killed with the worker (before the worker's channels
-- close, so it never sees them close: it prints nothing); the detached
-- one lives on, sees its channel close (no_senders) and prints. This
-- process waits for it: a detached sandbox still belongs to this
-- process's supervisor (it dies with the process, see host_death in
-- tests/sandboxed_vm.rs).
spawn_vm{ module = '/fixtures/detaches', inherit_context = false }
