-- trimmed returns a slice sharing memory, without leading/trailing lws
local b = byte_span.append(" \t  hi there \r\n")
local t = b:trimmed()
print("[" .. tostring(t) .. "]", #t, t.capacity, b.capacity)

t[1] = 72
print("[" .. tostring(b:slice(5, 12)) .. "]")

local c = byte_span.append("--==x y==--")
print(tostring(c:trimmed("-=")), tostring(c:trimmed(byte_span.append("-"))))
print(c:trimmed("") == c)

local all = byte_span.append(" \n\t ")
local e = all:trimmed()
print(#e, e.capacity)
