-- coroutine.* and string.gsub load their code on first use (a lazy core
-- chunk): a finalizer run while the VM closes that is the VM's first user
-- still gets them working (the results show in the finalizer's error).
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
  error(table.concat(out, ', '), 0)
end
print('main done')
