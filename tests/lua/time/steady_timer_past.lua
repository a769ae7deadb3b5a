-- waiting on a timer whose expiry is in the past returns promptly
local time = require 'time'
local t = time.steady_timer.new()
t:wait()
print('new timer: expiry is the epoch', t.expiry == time.steady_clock.epoch())
t:expires_at(time.steady_clock.now():sub(10))
t:wait()
print('past expiry waited')
