-- Error values are only inspected with raw accesses: forged error codes,
-- hostile metamethods (raising or yielding), userdata, threads, functions
-- and nil never break the report, the scheduler or the other fibers.
local future = require 'future'
local function raiser() error('metamethod ran', 0) end
local function yielder() this_fiber.yield() return 'yielded' end
local core = select(2, pcall(this_fiber.allow_suspend)).category

local values = {
  { 'forged error_code', setmetatable({}, { __metatable = 'error_code' }) },
  { 'raising __tostring', setmetatable({}, { __tostring = raiser }) },
  { 'forged, raising __index/__eq/__tostring', setmetatable({}, {
    __metatable = 'error_code', __index = raiser, __eq = raiser, __tostring = raiser }) },
  { 'forged, yielding __index', setmetatable({}, { __metatable = 'error_code', __index = yielder }) },
  { 'forged interruption', setmetatable({ code = 13, category = core }, { __metatable = 'error_code' }) },
  -- (user code cannot make userdata with its own metamethods: the safe
  -- environment has no newproxy; a promise is the runtime's userdata)
  { 'userdata (a promise)', (future.new()) },
  { 'thread', coroutine.create(print) },
  { 'function', print },
  { 'nil', nil },
}

-- a real error object whose fields were replaced
local tampered = select(2, pcall(this_fiber.allow_suspend))
tampered.category = setmetatable({}, { __tostring = raiser, __index = raiser })
tampered.code = setmetatable({}, { __index = raiser })
values[#values + 1] = { 'tampered real error', tampered }

for _, v in ipairs(values) do
  local name, e = v[1], v[2]
  -- pcall hands the value back untouched
  local ok, got = pcall(error, e, 0)
  assert(not ok and rawequal(got, e), name)
  -- join re-raises it, and it is never taken for an interruption
  local h = spawn(function() error(e, 0) end)
  local ok2, got2 = pcall(h.join, h)
  print(name .. ': join raised same value', not ok2 and rawequal(got2, e),
    'interruption_caught', h.interruption_caught)
  -- through a future
  local p, fu = future.new()
  if e ~= nil then
    p:set_error(e)
    local ok3, got3 = pcall(fu.get, fu)
    assert(not ok3 and rawequal(got3, e), name)
  end
  -- a detached fiber failing with it gets a panic report
  spawn(function() error(e, 0) end):detach()
  this_fiber.yield()
end
print('all fibers still run')
