-- scope() runs its cleanup handlers in reverse order when the function
-- leaves, by return or by error; the error is then re-raised.
local mutex = require 'mutex'
local m = mutex.new()

local function with_lock(f)
    m:lock()
    scope(function()
        scope_cleanup_push(function() m:unlock() print('unlocked') end)
        f()
    end)
end

with_lock(function() print('working') end)
print(pcall(with_lock, function() error('failed half-way', 0) end))
print('mutex free again:', m:try_lock())
