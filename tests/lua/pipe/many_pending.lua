-- several ops in flight on one object at once (the first is tracked apart
-- from the others): each one that completes stops counting, a new op
-- joins, release() stays EBUSY while any is pending, and close() or
-- cancel() abort every one of them
local pipe = require 'pipe'

local function readers(r, n, results)
  local fibers = {}
  for i = 1, n do
    fibers[i] = spawn(function()
      local buf = byte_span.new(1)
      local ok, e = pcall(r.read_some, r, buf)
      results[#results + 1] = ok and ('read ' .. tostring(buf:slice(1, e))) or tostring(e)
    end)
  end
  this_fiber.yield()
  return fibers
end
local function wait_for(results, n)
  while #results < n do this_fiber.yield() end
end
local function report(label, fibers, results)
  for _, f in ipairs(fibers) do f:join() end
  table.sort(results)
  print(label, table.concat(results, ' | '))
end

-- close() under three reads, one of which completed and was replaced
local r, w = pipe.pair()
local results = {}
local fibers = readers(r, 3, results)
local ok, e = pcall(r.release, r)
print('release, 3 pending:', ok, tostring(e))
w:write_some('a')
wait_for(results, 1)
for _, f in ipairs(readers(r, 1, results)) do fibers[#fibers + 1] = f end
ok, e = pcall(r.release, r)
print('release, 3 pending again:', ok, tostring(e))
w:write_some('b')
wait_for(results, 2)
ok, e = pcall(r.release, r)
print('release, 2 pending:', ok, tostring(e))
r:close()
report('after close:', fibers, results)
print('open:', r.is_open)
w:close()

-- cancel() under three reads: all abort, the object stays usable and
-- release() works once none is pending
r, w = pipe.pair()
results = {}
fibers = readers(r, 3, results)
r:cancel()
report('after cancel:', fibers, results)
w:write_some('c')
results = {}
report('next read:', readers(r, 1, results), results)
local fd = r:release()
print('released:', getmetatable(fd), r.is_open)
w:close()
