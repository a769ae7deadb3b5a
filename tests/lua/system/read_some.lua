-- stdin: hello\nworld
-- in_:read_some reads what is available, then EOF
local system = require 'system'
local buf = byte_span.new(64)
local total = {}
while true do
  local ok, n = pcall(system.in_.read_some, system.in_, buf)
  if not ok then
    print('error:', tostring(n.category), tostring(n))
    break
  end
  total[#total + 1] = tostring(buf:slice(1, n))
end
print(string.format('%q', table.concat(total)))
