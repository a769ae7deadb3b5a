-- argument and range errors of the methods
local function try(f, ...)
    local ok, err = pcall(f, ...)
    if ok then
        print("no error")
    else
        print(tostring(err), err.code, err.arg)
    end
end

local b = byte_span.append("hello")   -- #b == 5, capacity 5

print("slice")
try(b.slice, b, 0)
try(b.slice, b, 1, 6)
try(b.slice, b, 4, 2)
try(b.slice, b, 1.5)
try(b.slice, b, "1")
try(b.slice, b, 1, {})
try(b.slice, "hello", 1)
try(b.slice, b, 6, 5)                 -- empty at the end: fine

print("copy")
try(b.copy, b, 42)
try(b.copy, b)
try(b.copy, "hello", "x")

print("append")
try(b.append, b, "x", 1)
try(b.append, b, true)
try(byte_span.append, "a", {})
try(byte_span.append, false)

print("search")
try(b.starts_with, b, nil)
try(b.ends_with, b, 5)
try(b.find, b, "l", 0)
try(b.find, b, "l", 7)
try(b.find, b, "l", 6)                -- #b + 1: fine, returns nil
try(b.rfind, b, "l", -1)
try(b.rfind, b, "l", 6)
try(b.find_first_of, b, 1)
try(b.find_last_not_of, b, "x", "2")
try(b.trimmed, b, 0)
try(b.find, 7, "l")

print(tostring(b), #b, b.capacity)
