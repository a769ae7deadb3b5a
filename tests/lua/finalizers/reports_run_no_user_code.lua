-- Reports from finalizers (a raising __gc, a collected handle of a failed
-- fiber) never call user metamethods: error values that only look like
-- runtime errors print as '' and their __tostring / __index never run.
local ran = {}
local function evil(name)
  return setmetatable({}, {
    __tostring = function() ran[#ran + 1] = name .. ' __tostring' return name end,
    __index = function() ran[#ran + 1] = name .. ' __index' return 1 end,
  })
end
local fake_code = setmetatable({ category = evil('category') }, {
  __metatable = 'error_code',
  __index = function() ran[#ran + 1] = 'fake __index' end,
})
-- no raw fields at all: every read would reach __index
local hollow_code = setmetatable({}, {
  __metatable = 'error_code',
  __index = function(_, k) ran[#ran + 1] = 'hollow __index ' .. k error('hollow') end,
})
local real = select(2, pcall(require('time').sleep, -1))
local broken_real = select(2, pcall(require('time').sleep, -1))
broken_real.code = {} -- no longer a number: printed as ''
local values = { 'a string', real, broken_real, evil('value'), fake_code, 42, nil, true, hollow_code }
for i = 1, 9 do
  local u = newproxy(true)
  getmetatable(u).__gc = function() error(values[i], 0) end
  u = nil
  collectgarbage()
end
-- failed fibers whose handles are collected
for i = 1, 9 do
  spawn(function() error(values[i], 0) end)
end
this_fiber.yield()
collectgarbage()
collectgarbage()
print('user code run by reports:', #ran)
