-- Panic reports never run user code: a table that claims the error_code
-- metatable name is not an error value (its report message is empty), and a
-- real error value whose category or code was replaced prints '' too
-- instead of calling the replacement's metamethods.
local ran = {}
local function spy(what)
  return setmetatable({}, {
    __tostring = function() ran[#ran + 1] = what .. ' __tostring' return 'x' end,
    __index = function() ran[#ran + 1] = what .. ' __index' end,
    __eq = function() ran[#ran + 1] = what .. ' __eq' return true end,
  })
end
local forged = setmetatable({ category = spy('forged'), code = 13 }, { __metatable = 'error_code' })
spawn(function() error(forged) end):detach()
local _, real = pcall(setfenv, spawn, {})
real.category = spy('replaced category')
spawn(function() error(real) end):detach()
local _, real2 = pcall(setfenv, spawn, {})
real2.code = 1e300
spawn(function() error(real2) end):detach()
local _, real3 = pcall(setfenv, spawn, {})
real3.code = 'EPERM'
spawn(function() error(real3) end):detach()
this_fiber.yield()
print('user code run by the reports:', #ran, table.concat(ran, ', '))
