-- scope, scope_cleanup_push, scope_cleanup_pop and xpcall
-- (lua/core/scopes.lua), spawn and this_fiber's functions besides yield
-- (lua/core/fibers.lua) load their code on first use: a finalizer run
-- while the VM closes that is the VM's first user of them still gets them
-- working (the results show in the finalizer's error).
keep = newproxy(true)
getmetatable(keep).__gc = function()
  local out = {}
  scope(function()
    scope_cleanup_push(function() out[#out + 1] = 'cleanup ran' end)
    scope_cleanup_push(function() out[#out + 1] = 'popped, not run' end)
    scope_cleanup_pop(false)
    out[#out + 1] = 'in scope'
  end)
  out[#out + 1] = select(2, xpcall(error, function(e) return 'handled ' .. e end, 'boom', 0))
  out[#out + 1] = select(2, pcall(spawn, print))
  out[#out + 1] = select(2, pcall(function() return this_fiber.id end))
  error(table.concat(out, ', '), 0)
end
print('main done')
