-- pcall and xpcall open a scope: handlers run before they return
print(pcall(function()
  scope_cleanup_push(function() print('pcall handler (success)') end)
  return 'ok'
end))
print(pcall(function()
  scope_cleanup_push(function() print('pcall handler (error)') end)
  error('err', 0)
end))
print(xpcall(function()
  scope_cleanup_push(function() print('xpcall handler') end)
  error('xerr', 0)
end, function(e) print('message handler sees', e) return 'handled' end))
