-- An error raised from a string.gsub callback inside a __gc finalizer is
-- caught by the collector, not by a runtime wrapper: the callback's count
-- in the C-stack depth is not undone there. The pcall around the code the
-- finalizer interrupted puts back the depth it started with (also when it
-- succeeds), so such errors never add up to a false 'C stack overflow'.
local function leaky_proxy()
  local u = newproxy(true)
  getmetatable(u).__gc = function()
    ('x'):gsub('x', function() error('boom', 0) end)
  end
  return u
end
for _ = 1, 210 do
  local ok = pcall(function()
    leaky_proxy()
    collectgarbage()
  end)
  assert(ok)
end
-- 150 nested gsub callbacks still fit in the 200 levels
local function nest(n)
  if n == 0 then return 'deep enough' end
  local r
  ('x'):gsub('x', function() r = nest(n - 1) end)
  return r
end
print(pcall(nest, 150))
