-- Coroutines resumed inside a callback from C count twice: in the C-stack
-- depth (200 levels) and in the scheduler's count of coroutines that cannot
-- suspend their fiber. Both are restored whichever way the nesting ends
-- (results, 'C stack overflow', an error), so the fiber can suspend again
-- and a new nest gets the full depth.
local time = require 'time'
local depth
local function nest(n)
  depth = n
  local ok, err = coroutine.resume(coroutine.create(function() return nest(n + 1) end))
  if not ok then error(err, 0) end
  return err
end
local function in_comparator(fn)
  local result
  table.sort({ 2, 1 }, function(a, b)
    result = { pcall(fn) }
    return a < b
  end)
  return unpack(result)
end
for round = 1, 2 do
  depth = 0
  print(round, 'sort + resumes', in_comparator(function() return nest(0) end))
  print(round, 'depth reached', depth)
  -- inside the comparator the nested coroutines could not suspend the fiber
  print(round, 'sleep inside', in_comparator(function()
    return coroutine.wrap(function() time.sleep(0) end)()
  end) == false)
  depth = 0
  print(round, 'gsub + resumes', pcall(function()
    return (('a'):gsub('.', function() return nest(0) end))
  end))
  print(round, 'depth reached', depth)
  -- both counts are back to zero: the fiber suspends and nests fully again
  time.sleep(0)
  this_fiber.yield()
  print(round, 'suspends again')
end
