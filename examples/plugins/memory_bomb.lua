-- Misbehaves: grows a table of strings until its memory limit stops it.
require('inbox'):receive()
local t = {}
while true do t[#t + 1] = string.rep('x', 1e5) .. #t end
