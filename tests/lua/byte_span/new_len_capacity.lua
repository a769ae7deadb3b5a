-- byte_span.new, #, capacity, indexing, tostring, __eq, locked metatable
local a = byte_span.new(3)
print(#a, a.capacity)
print(a[1], a[2], a[3])

local b = byte_span.new(2, 10)
print(#b, b.capacity)

local z = byte_span.new(0)
print(#z, z.capacity, tostring(z) == "")

a[1] = 72
a[2] = 105
a[3] = 0x21
print(a[1], a[2], a[3])
print(tostring(a))
print(a)

a[3] = 255
print(a[3], tostring(a) == "Hi\255")

print(getmetatable(a))
print(type(a))

-- __eq: same memory and same length
print(a == a, a == a:slice(), a == a:slice(1, 2))
print(byte_span.new(3) == byte_span.new(3))
print(a:slice(2) == a:slice(2, 3))
