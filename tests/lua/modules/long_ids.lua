-- Ids the kernel refuses as too long fail with the OS error (system
-- category, ENAMETOOLONG), and are not remembered: a valid require after
-- them works.
local ENAMETOOLONG = require('generic_error').ENAMETOOLONG.code
for _, id in ipairs({
  './' .. string.rep('a', 300),                    -- one name longer than NAME_MAX
  '/' .. string.rep('abcdefgh/', 600) .. 'x',      -- a path longer than PATH_MAX
}) do
  local ok, e = pcall(require, id)
  print(#id, ok, tostring(e.category), e.code == ENAMETOOLONG, tostring(e))
end
print(require('/fixtures/links/target').name)
