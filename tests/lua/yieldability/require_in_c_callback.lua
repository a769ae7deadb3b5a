-- require of a module not loaded yet reads its file (suspending): inside a
-- sort comparator it raises and leaves the module unloaded, so a later
-- require outside the callback loads it normally
local ok, err = pcall(table.sort, { 2, 1 }, function(a, b)
  require('./req_fixture')
  return a < b
end)
print(ok, (tostring(err):gsub(':.*', '')))
print(require('./req_fixture').value)
