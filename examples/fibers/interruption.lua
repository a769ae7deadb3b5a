-- interrupt() cancels what the fiber waits for (here an io_uring timeout);
-- the fiber sees the `interrupted` error at that suspension point, and its
-- cleanup handlers still run.
local time = require 'time'

local sleeper = spawn(function()
    scope_cleanup_push(function() print('cleanup runs') end)
    time.sleep(3600)
    print('never printed')
end)

this_fiber.yield()          -- let the sleeper start sleeping
sleeper:interrupt()
sleeper:join()              -- returns normally: the fiber ended by interruption
print('interruption_caught', sleeper.interruption_caught)

-- Critical sections can refuse interruption.
local careful = spawn(function()
    this_fiber.disable_interruption()
    time.sleep(0.01)        -- not interrupted while disabled
    print('finished the critical part')
    this_fiber.restore_interruption()
    time.sleep(3600)        -- interrupted here: the request was kept
end)
this_fiber.yield()
careful:interrupt()
careful:join()
print('interruption_caught', careful.interruption_caught)
