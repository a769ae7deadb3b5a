-- Where LuaJIT can yield (protected calls, metamethods
-- called from Lua code, for-in iterators, __tostring via tostring, user
-- coroutines) every suspending function works.
local ops = require('./ops').list

local contexts = {
  { 'pcall', function(op) assert(pcall(op)) end },
  { 'xpcall body', function(op) assert(xpcall(op, function(e) return e end)) end },
  { '__index', function(op) local _ = setmetatable({}, { __index = function() op() end }).x end },
  { '__newindex', function(op) setmetatable({}, { __newindex = function() op() end }).x = 1 end },
  { '__call', function(op) setmetatable({}, { __call = function() op() end })() end },
  { '__eq', function(op)
    local mt = { __eq = function() op() return true end }
    local _ = setmetatable({}, mt) == setmetatable({}, mt)
  end },
  { '__lt', function(op)
    local mt = { __lt = function() op() return true end }
    local _ = setmetatable({}, mt) < setmetatable({}, mt)
  end },
  { '__concat', function(op) local _ = setmetatable({}, { __concat = function() op() return '' end }) .. 'x' end },
  { 'tostring __tostring', function(op) tostring(setmetatable({}, { __tostring = function() op() return '' end })) end },
  { 'for-in iterator', function(op)
    for _ in function(_, i) if not i then op() return 1 end end do end
  end },
  { 'coroutine.wrap', function(op) coroutine.wrap(op)() end },
}

for _, c in ipairs(contexts) do
  local line = {}
  for _, o in ipairs(ops) do
    local run, after = o.make(true)
    if run then
      local ok, err = pcall(c[2], run)
      this_fiber.yield()
      this_fiber.yield()
      require('time').sleep(0.003)
      line[#line + 1] = o.name .. '=' .. (ok and 'ok' or tostring(err))
        .. (after(true) and '' or ' (UNEXPECTED STATE)')
    end
  end
  print(c[1] .. ': ' .. table.concat(line, ' '))
end
