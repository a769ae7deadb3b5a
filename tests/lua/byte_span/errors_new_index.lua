-- argument errors of byte_span.new and of indexing
local function try(f, ...)
    local ok, err = pcall(f, ...)
    if ok then
        print("no error")
    else
        print(tostring(err), err.code, err.arg)
    end
end

try(byte_span.new)
try(byte_span.new, -1)
try(byte_span.new, 1.5)
try(byte_span.new, "4")
try(byte_span.new, 1, -1)
try(byte_span.new, 1, "8")
try(byte_span.new, 5, 3)

local b = byte_span.new(2, 4)
try(function() return b[0] end)
try(function() return b[3] end)      -- inside the capacity, past #b
try(function() return b[1.5] end)
try(function() b[3] = 1 end)
try(function() b[1] = 256 end)
try(function() b[1] = -1 end)
try(function() b[1] = "x" end)
try(function() b.capacity = 10 end)

local ok, err = pcall(function() return b.no_such_method end)
print(ok, tostring(err), err.code, tostring(err.category))
print(#b, b[1], b[2])
