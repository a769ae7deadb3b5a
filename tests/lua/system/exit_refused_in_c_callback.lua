-- system.exit where the fiber cannot yield (sort comparator, xpcall message
-- handler, gsub callback) raises and changes nothing: the script runs on and
-- the exit status stays 0
local system = require 'system'
local function show(ok, err)
  print(ok, (tostring(err):gsub(':.*', '')))
end
show(pcall(table.sort, { 3, 2, 1 }, function(a, b) system.exit(3) end))
local _, r = xpcall(function() error('x') end, function() return { pcall(system.exit, 4) } end)
show(r[1], r[2])
show(pcall(string.gsub, 'x', 'x', function() system.exit(5) end))
print('still running')
