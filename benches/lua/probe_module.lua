-- Prints "ok" when require(NAME) works in this luring, else
-- "failed: <error>" (the I/O benches skip what the binary lacks).
local name = require('system').arguments[3]
local ok, err = pcall(require, name)
if ok then print('ok') else print('failed: ' .. tostring(err)) end
