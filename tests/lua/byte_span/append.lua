-- member append: in place when the capacity allows, else new memory
local b = byte_span.new(0, 8)
local c = b:append("ab", byte_span.append("cd"))
print(#b, #c, c.capacity, tostring(c))

c[1] = 65
print(tostring(b:slice(1, 4)))   -- same memory
print(c == b:slice(1, 4))

local d = c:append("efgh")       -- exactly fills the capacity
print(#d, d.capacity, tostring(d))
d[2] = 66
print(tostring(c))               -- still shared

local e = d:append("!")          -- 9 > 8: new memory
print(#e, e.capacity, tostring(e))
e[1] = 122
print(tostring(d), tostring(e))

print(rawequal(d:append(), d))
print(tostring(d:slice(1, 2):append(nil, "", "XY")))

-- appending a span to itself
local s = byte_span.new(3, 10)
s:copy("abc")
print(tostring(s:append(s, s)))
print(tostring(s:slice(1, 1):append(s)))

-- non-member append: always fresh memory, capacity = length
local n = byte_span.append("one", " ", byte_span.append("two"), nil)
print(#n, n.capacity, tostring(n))
local empty = byte_span.append()
print(#empty, empty.capacity)
