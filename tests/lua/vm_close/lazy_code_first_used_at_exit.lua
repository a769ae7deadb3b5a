-- coroutine.*, string.gsub, fiber handle methods and this_fiber's functions
-- besides yield load their code on first use (lazy core chunks): a
-- finalizer run while the VM closes that is the VM's first user still gets
-- them working (the results show in the finalizer's error).
local fiber = spawn(function() return 1 end)
keep = newproxy(true)
getmetatable(keep).__gc = function()
  local out = {}
  local s, n = ('a-b'):gsub('%w', function(c) return c:upper() end)
  out[#out + 1] = s .. ' ' .. n
  local co = coroutine.wrap(function(a)
    local b = coroutine.yield(a + 1)
    out[#out + 1] = b
    out[#out + 1] = tostring(coroutine.isyieldable())
  end)
  out[#out + 1] = co(1)
  co('resumed')
  out[#out + 1] = coroutine.status(coroutine.create(print))
  out[#out + 1] = tostring(coroutine.running())
  out[#out + 1] = 'joinable ' .. tostring(fiber.joinable)
  fiber:detach()
  out[#out + 1] = 'joinable ' .. tostring(fiber.joinable)
  out[#out + 1] = select(2, pcall(function() return this_fiber.id end))
  error(table.concat(out, ', '), 0)
end
print('main done')
