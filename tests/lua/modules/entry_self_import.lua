-- The entry script is the root module and is still loading while it runs:
-- importing it again, by any path (its own name, the '/' form, a symlink to
-- it, from a module it imports), is cyclic_import (spec/core.md §6).
for _, id in ipairs({ './entry_self_import', '/entry_self_import', './entry_alias' }) do
  local ok, e = pcall(require, id)
  print(id, ok, e.code, tostring(e.category), tostring(e))
end
require './entry_cycle_mod'
