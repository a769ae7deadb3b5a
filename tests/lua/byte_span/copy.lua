-- copy: min(#dst, #src) bytes, overlap-safe
local b = byte_span.new(4)
print(b:copy("wxyz!!"), tostring(b))
print(b:copy("ab"), tostring(b))
print(b:copy(""), tostring(b))
print(b:copy(byte_span.append("12345")), tostring(b))

local o = byte_span.append("abcdef")
print(o:slice(3):copy(o), tostring(o))

o = byte_span.append("abcdef")
print(o:copy(o:slice(3)), tostring(o))

-- copying into a slice writes the parent's memory
local p = byte_span.append("......")
p:slice(2, 3):copy("XYZ")
print(tostring(p))
