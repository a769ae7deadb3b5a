-- find_first_of / find_last_of / find_first_not_of / find_last_not_of
local b = byte_span.append("key = value;")
--                          123456789012

print(b:find_first_of("=;"), b:find_first_of(" ", 5), b:find_first_of("xz"))
print(b:find_last_of("e"), b:find_last_of("e", 10), b:find_last_of("k", 0))
print(b:find_first_not_of("key "), b:find_first_not_of(""), b:find_first_not_of("aekluvy =;"))
print(b:find_last_not_of(";"), b:find_last_not_of("eu;", 11), b:find_last_not_of("", 3))

local set = byte_span.append(" =")
print(b:find_first_of(set), b:find_last_of(set), b:find_first_not_of(set, 4))
