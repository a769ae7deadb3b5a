-- Regression: a fiber that raised from join (joining itself) whose handle is
-- still referenced when the VM closes used to panic inside lua_close.
local f
f = spawn(function() f:join() end)
_G.keep = f
print('main done')
