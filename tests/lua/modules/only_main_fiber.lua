-- only a module's main fiber may import (core modules included)
local f = spawn(function()
  local ok, e = pcall(require, 'time')
  print(ok, e.code, tostring(e.category), tostring(e))
  ok, e = pcall(require, './helper_mod')
  print(ok, e.code)
end)
f:join()
require '/fixtures/spawner'
