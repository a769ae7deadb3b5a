-- Misbehaves: never answers and spins until its CPU budget is used up.
require('inbox'):receive()
local n = 0
while true do n = n + 1 end
