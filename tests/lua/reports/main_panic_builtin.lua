-- exit: 1
-- a builtin that fails adds its own frame on top
local f = spawn(function() error('child', 0) end)
f:detach()
local g = spawn(function() end)
g:join()
g:join()
