-- join returns exactly the values the fiber returned (none, one, nil,
-- false, several with holes), whether it finished before or during the join
local cases = {
  { 'none', function() end },
  { 'one', function() return 'x' end },
  { 'nil', function() return nil end },
  { 'false', function() return false end },
  { 'several', function() return 1, nil, 3, nil end },
  { 'args', function(...) return ... end, 'a', nil, 'c' },
}
for _, c in ipairs(cases) do
  local early = spawn(c[2], unpack(c, 3, 5))
  this_fiber.yield() -- finished before the join
  local late = spawn(function(...) this_fiber.yield() return c[2](...) end, unpack(c, 3, 5))
  local function show(...) return select('#', ...), ... end
  print(c[1], show(early:join()))
  print(c[1], show(late:join()))
end
