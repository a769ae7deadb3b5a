-- imported by entry_self_import.lua (not a case): imports the entry back
for _, id in ipairs({ '../entry_self_import', '/entry_self_import', '../entry_alias' }) do
  local ok, e = pcall(require, id)
  print('module imports the entry ' .. id .. ':', ok, e.code, tostring(e))
end
