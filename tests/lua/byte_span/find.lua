-- starts_with, ends_with, find, rfind (1-based results, nil when absent)
local b = byte_span.append("hello world")

print(b:starts_with("hello"), b:starts_with("world"), b:starts_with(""))
print(b:ends_with("world"), b:ends_with(byte_span.append("ld")), b:ends_with("hello"))

print(b:find("o"), b:find("o", 6), b:find("o", 9))
print(b:find("world"), b:find(byte_span.append("lo w")), b:find("xyz"))
print(b:find("d", 11), b:find("d", 12), b:find("", 4))

print(b:rfind("o"), b:rfind("o", 7), b:rfind("o", 8))
print(b:rfind("lo", 4), b:rfind("h", 1), b:rfind("o", 0))
print(b:rfind("world", 6), b:rfind("world", 7), b:rfind(""))

-- searches never mutate
print(tostring(b))
