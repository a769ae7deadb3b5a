-- Garbage with finalizers that is still uncollected when the VM ends is
-- finalized by lua_close (no collection runs first): the output queue has
-- been drained by then, so print raises the "VM is closing" error and every
-- report still reaches stderr, after all earlier output.
collectgarbage('stop') -- nothing is collected before the VM ends
for i = 1, 3 do
  local u = newproxy(true)
  getmetatable(u).__gc = function() print('finalizer ' .. i) end
end
local u = newproxy(true)
getmetatable(u).__gc = function() error('raised at exit', 0) end
u = nil
print('main done')
