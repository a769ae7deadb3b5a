-- slice shares memory and may grow up to the capacity
local b = byte_span.new(3, 8)
b:copy("abc")
print(#b, b.capacity, tostring(b))

local s = b:slice(2)
print(#s, s.capacity, tostring(s))
s[1] = 66
print(tostring(b))

-- growing past #b into the spare capacity
local g = b:slice(1, 8)
print(#g, g.capacity)
g:slice(4, 6):copy("def")
print(tostring(g:slice(1, 6)))
print(tostring(b:slice(1, 6)), #b)

-- a slice of a slice, measured from its own start
local t = s:slice(3, 5)
print(#t, t.capacity, tostring(t))

-- empty slices
local e1 = b:slice(4)
print(#e1, e1.capacity)
local e2 = b:slice(9, 8)
print(#e2, e2.capacity)
