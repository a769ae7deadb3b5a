-- The json module and format, called by finalizers while the VM closes:
-- each raises the "VM is closing" error (their Rust code would read Lua
-- values through handles mlua no longer has), none crashes the process.
local json = require 'json'
local w = json.writer.new()
local calls = {
  function() return json.encode({ a = 1 }) end,
  function() return json.decode('[1]') end,
  function() return json.is_array({}) end,
  function() return json.into_array({}) end,
  function() return json.writer.new() end,
  function() return w:value(1) end,
  function() return format('{}', 1) end,
  function() return tostring(json.null) end,
}
keep = { w }
for i, fn in ipairs(calls) do
  local u = newproxy(true)
  getmetatable(u).__gc = function()
    local ok, e = pcall(fn)
    error(i .. ': ' .. tostring(ok) .. ' ' .. tostring(e), 0)
  end
  keep[#keep + 1] = u
end
print('main done')
