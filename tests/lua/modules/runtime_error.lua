-- an error raised by the module body propagates to require
local ok, e = pcall(require, '/fixtures/raises')
print(ok, e)
