-- The C-stack depth belongs to what is on the thread's stack now: a fiber
-- suspended deep inside nested coroutines holds none of it, so two fibers
-- can each nest 150 coroutines deep and take turns suspending there; the
-- limit is 200 nested resumes.
local time = require 'time'
local function nest(n, tag)
  if n == 0 then
    this_fiber.yield()
    time.sleep(0.001)
    return tag
  end
  return coroutine.wrap(function() return nest(n - 1, tag) end)()
end
local a = spawn(function() return nest(150, 'a') end)
local b = spawn(function() return nest(150, 'b') end)
print(a:join(), b:join())
print(nest(200, 'main'))
print(pcall(nest, 201, 'too deep'))
