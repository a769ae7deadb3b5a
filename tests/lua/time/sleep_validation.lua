-- sleep validates its argument: EDOM (arg=1), EOVERFLOW, EINVAL
local time = require 'time'
local ge = require 'generic_error'
local function try(v)
  local ok, e = pcall(time.sleep, v)
  print(ok, tostring(e.category), tostring(e), e.arg,
    e == ge.EDOM and 'EDOM' or e == ge.EOVERFLOW and 'EOVERFLOW'
    or e == ge.EINVAL and 'EINVAL' or '?')
end
try(-1)
try(0 / 0)
try(math.huge)
try(-math.huge)
try(1e300)
try('1')
try(nil)
