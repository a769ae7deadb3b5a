-- Inside a callback called from C a fiber cannot suspend: every suspending
-- function raises there BEFORE it registers anything (no stale timer, no
-- queue entry, no joiner), so nothing wakes the fiber later and no two
-- fibers end up owning one mutex.
local time = require 'time'
local future = require 'future'
local ops = require('./ops').list

local function gc_context(op)
  -- a finalizer runs inside collectgarbage (a C call)
  local result
  local u = newproxy(true)
  getmetatable(u).__gc = function() result = { pcall(op) } end
  u = nil
  collectgarbage()
  collectgarbage()
  if not result[1] then error(result[2], 0) end
end

-- User finalizers exist (newproxy(true)), but newproxy cannot share a
-- metatable: the '__gc' context below is the only way to write one.
assert(not pcall(newproxy, newproxy(true)), 'newproxy(userdata) must be refused')

local contexts = {
  { 'table.sort comparator', function(op) table.sort({ 3, 2, 1 }, function(a, b) op() return a < b end) end },
  { 'table.sort __lt', function(op)
    local mt = { __lt = function() op() return false end }
    table.sort({ setmetatable({}, mt), setmetatable({}, mt) })
  end },
  { 'string.gsub callback', function(op) ('x'):gsub('x', function() op() end) end },
  { 'string.gsub replacement table __index', function(op)
    ('x'):gsub('x', setmetatable({}, { __index = function() op() end }))
  end },
  { 'string.format __tostring', function(op)
    string.format('%s', setmetatable({}, { __tostring = function() op() return '' end }))
  end },
  { 'load reader', function(op)
    local fn, err = load(function() op() return nil end)
    error(err, 0)
  end },
  { '__gc', gc_context },
  { 'xpcall message handler', function(op)
    local _, r = xpcall(function() error('x') end, function() return { pcall(op) } end)
    if not r[1] then error(r[2], 0) end
  end },
  { 'coroutine resumed in a comparator', function(op)
    table.sort({ 3, 2, 1 }, function(a, b)
      local ok, err = coroutine.resume(coroutine.create(op))
      if not ok then error(err, 0) end
      return a < b
    end)
  end },
}

local CANNOT = '^attempt to yield across C%-call boundary'
for _, c in ipairs(contexts) do
  local line = {}
  for _, o in ipairs(ops) do
    local run, after = o.make(false)
    if run then
      local ok, err = pcall(c[2], run)
      local refused = not ok and type(err) == 'string' and err:find(CANNOT) ~= nil
      -- let the fibers the setup spawned run, then check nothing was left
      this_fiber.yield()
      this_fiber.yield()
      time.sleep(0.003)
      local state_ok = after(false)
      line[#line + 1] = o.name .. '=' .. (refused and 'refused' or ('NOT REFUSED: ' .. tostring(err)))
        .. (state_ok and '' or ' (STATE CHANGED)')
    end
  end
  print(c[1] .. ':\n  ' .. table.concat(line, '\n  '))
end

-- No stray wake-up is still pending: a get on a late future returns only
-- when its value is set.
local p, fu = future.new()
spawn(function() time.sleep(0.05) p:set_value('late') end)
print(fu:get())
