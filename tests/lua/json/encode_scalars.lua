-- encode() of every scalar type, and the values that have no JSON form
local json = require 'json'
local function try(...)
    local ok, r = pcall(json.encode, ...)
    if ok then print(r) else print('error', tostring(r), r.category, r.code, r.arg) end
end

try(true)
try(false)
try(json.null)
try(0)
try(-0.0)                 -- integral: no fraction, no sign
try(42)
try(-7)
try(2^53)
try(2^63 - 1024)          -- largest double below 2^63
try(2^63)
try(1e300)
try(0.1)
try(1/3)
try(-1.5e-7)
try(5e-324)
try('')
try('plain')
try('quote " backslash \\ slash /')
try('\b\f\n\r\t\0\1\31\127')
try('héllo ☺ 𝄞')
-- no JSON form
try(0/0)
try(1/0)
try(-1/0)
try(nil)
try(print)
try(coroutine.create(function() end))
try(byte_span.new(1))
try('\255')               -- not UTF-8
