-- spawn_vm's argument checks and module resolution errors (spec/actors.md §1)
local function try(...)
  local ok, e = pcall(spawn_vm, ...)
  if ok then return 'ok' end
  if type(e) == 'table' then
    return tostring(e), e.arg, e.module, e.file_type
  end
  return e
end
print('nil', try(nil))
print('number', try(42))
print('empty', try(''))
print('bare', try('json'))
print('bad form', try('./a/b'))
print('missing', try('/workers/nope'))
print('options no module', try({}))
print('module not string', try({ module = 1 }))
print('inherit not bool', try({ module = '.', inherit_context = 1 }))
print('subprocess', try({ module = '.', subprocess = { newns_pid = 'yes' } }))
print('subprocess+inherit', try({ module = '.', subprocess = {}, inherit_context = true }))
print('metatable', try(setmetatable({ module = '.' }, {})))
print('root parent', try('../x'))
print('syntax error', try('/workers/syntax_error'))
print('directory', try('./workers'))
