-- Finalizers run while the VM closes raise the runtime's errno errors for
-- names no code of the VM had read yet (rt.errno fills on first read):
-- each is reported with its message, nothing crashes.
keep = {}
local calls = {
  function() setfenv(spawn, {}) end,
  function() spawn(42) end,
  function() spawn_context_threads(1) end,
}
for i, fn in ipairs(calls) do
  local u = newproxy(true)
  getmetatable(u).__gc = fn
  keep[i] = u
end
print('main done')
