-- require works from a user coroutine running on the main fiber
local co = coroutine.wrap(function()
  local m = require '/fixtures/coroutine_importer'
  return m.name
end)
print(co())
