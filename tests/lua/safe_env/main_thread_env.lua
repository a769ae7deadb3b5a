-- User metamethods the scheduler may trigger run on the main thread: there
-- getfenv(0) is nil, load() gets an empty sealed env, setfenv(0) is refused.
-- A forged error value (a table claiming the error_code metatable name)
-- makes the panic report look at its category.
local function probe()
  local ok_set, e_set = pcall(setfenv, 0, {})
  local chunk = load('return os, print, _G')
  local ok_write = pcall(load('leak = true'))
  print('in report path:', getfenv(0), chunk(), ok_set, tostring(e_set), ok_write)
end
local fake_category = setmetatable({}, {
  __tostring = function() probe() return 'fake' end,
  __index = function() probe() end,
})
local forged = setmetatable({ category = fake_category, code = 1 }, { __metatable = 'error_code' })
spawn(function() error(forged) end):detach()
this_fiber.yield()
print('main continues')
