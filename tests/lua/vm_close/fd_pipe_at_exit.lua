-- file_descriptor and pipe methods called by finalizers while the VM
-- closes: tostring still works, the rest raise the "VM is closing" error,
-- nothing crashes, and the descriptors are still closed.
local pipe = require 'pipe'
local r, w = pipe.pair()
local fd = r:release()
local calls = {
  function() return tostring(fd) end,
  function() return fd:dup() end,
  function() return fd:close() end,
  function() return fd:cap_get() end,
  function() return w:write_some('x') end,
  function() return w:release() end,
  function() return w:close() end,
  function() return pipe.pair() end,
}
keep = { fd, w }
for i, fn in ipairs(calls) do
  local u = newproxy(true)
  getmetatable(u).__gc = function()
    local ok, e = pcall(fn)
    if i == 1 then e = tostring(e):match('^/dev/fd/%d+$') ~= nil end
    error(i .. ': ' .. tostring(ok) .. ' ' .. tostring(e), 0)
  end
  keep[#keep + 1] = u
end
print('main done')
