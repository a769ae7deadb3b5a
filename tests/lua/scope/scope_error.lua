-- scope re-raises f's error after running the handlers
local ok, e = pcall(scope, function()
  scope_cleanup_push(function() print('handler runs') end)
  error('body failed', 0)
end)
print(ok, e)
local t = {}
ok, e = pcall(scope, function() error(t) end)
print(ok, rawequal(e, t))
