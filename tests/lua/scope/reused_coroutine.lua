-- A fiber's scopes end with it: the next fiber (which may run on the same
-- pooled coroutine) starts with no handler and the root scope's bound
-- (the runtime remembers the last fiber's scope record; this checks that
-- it forgets it when the fiber ends).
local f = spawn(function()
  scope_cleanup_push(function() print('first fiber: root handler') end)
  local ok = pcall(function()
    scope_cleanup_push(function() print('first fiber: pcall handler') end)
    this_fiber.yield()
  end)
  print('first fiber: pcall', ok)
end)
f:join()
local fibers = {}
for i = 1, 3 do
  fibers[i] = spawn(function()
    local ok, e = pcall(scope_cleanup_pop)
    print('fiber ' .. i .. ': pop at root', ok, tostring(e))
    pcall(function()
      scope_cleanup_push(function() print('fiber ' .. i .. ': inner handler') end)
      local ok2, e2 = pcall(scope_cleanup_pop, false)
      print('fiber ' .. i .. ': pop in nested pcall', ok2, tostring(e2))
    end)
    -- the three fibers interleave here, each suspended inside a pcall
    pcall(function()
      scope_cleanup_push(function() print('fiber ' .. i .. ': handler after yield') end)
      this_fiber.yield()
      print('fiber ' .. i .. ': resumed')
    end)
  end)
end
for i = 1, 3 do fibers[i]:join() end
print('main end')
