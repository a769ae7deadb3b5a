-- sleep suspends the fiber; sleep(0) works
local time = require 'time'
spawn(function() print('other fiber runs while main sleeps') end)
time.sleep(0)
print('after sleep(0)')
local f = spawn(function() time.sleep(0.001) print('sleeper woke') return 'r' end)
print('joined', f:join())
