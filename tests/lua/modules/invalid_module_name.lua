-- malformed ids raise invalid_module_name
for _, id in ipairs({ './/aaa', './aaa-', './a/b', './', '../', '/fixtures//simple',
                      '/fixtures/', '/1abc', 'aaa-', './1x' }) do
  local ok, e = pcall(require, id)
  print(string.format('%-20q', id), ok, e.code, tostring(e.category), tostring(e))
end
