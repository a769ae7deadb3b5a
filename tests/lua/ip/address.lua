-- ip.address: parsing, predicates, conversions, comparison, endpoints text
local ip = require 'ip'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local A = ip.address
print('default:', A.new(), getmetatable(A.new()))
print('constants:', A.any_v4(), A.any_v6(), A.loopback_v4(), A.loopback_v6(), A.broadcast_v4())
for _, text in ipairs{ '127.0.0.1', '10.1.2.3', '224.0.0.1', '0.0.0.0', '::1', '::',
    'fe80::1%3', 'fec0::1', '::ffff:1.2.3.4', 'ff02::1', 'ff0e::1', 'ff01::1', 'ff05::1', 'ff08::1',
    '2001:db8::1' } do
  local a = A.new(text)
  local preds = {}
  for _, p in ipairs{ 'is_v4', 'is_v6', 'is_loopback', 'is_unspecified', 'is_multicast',
      'is_link_local', 'is_site_local', 'is_v4_mapped', 'is_multicast_node_local',
      'is_multicast_link_local', 'is_multicast_site_local', 'is_multicast_org_local',
      'is_multicast_global' } do
    if a[p] then preds[#preds + 1] = p end
  end
  print(text, tostring(a), a.scope_id, table.concat(preds, ' '))
end
print('interface scope:', A.new('fe80::1%lo').scope_id > 0)
print('to_v6:', A.new('1.2.3.4'):to_v6(), A.new('::1'):to_v6())
print('to_v4:', A.new('::ffff:1.2.3.4'):to_v4(), A.new('1.2.3.4'):to_v4())
print('to_v4 of v6:', try(A.new('::1').to_v4, A.new('::1')))
local a, b, c = A.new('1.2.3.4'), A.new('1.2.3.5'), A.new('::1')
print('eq:', a == A.new('1.2.3.4'), a == b, A.new('fe80::1%1') == A.new('fe80::1%2'))
print('lt:', a < b, b < a, b < c, c < a, a <= a, b <= a)
local list = { c, b, A.new('::'), a, A.new('0.0.0.1') }
table.sort(list)
local texts = {}
for i, x in ipairs(list) do texts[i] = tostring(x) end
print('sorted:', table.concat(texts, ' '))
print('tostring:', ip.tostring(a), ip.tostring(a, 80), ip.tostring(c, 443), ip.tostring('::2', 1))
print('toendpoint:', ip.toendpoint('1.2.3.4:80'))
print('toendpoint v6:', ip.toendpoint('[fe80::1%2]:65535'))
print('host_name:', type(ip.host_name()))
print('message_flag:', ip.message_flag.peek ~= nil, ip.message_flag.out_of_band ~= nil)
-- bad addresses and wrong types
for _, bad in ipairs{ '', '1.2.3', '1.2.3.256', '::g', '1.2.3.4%1', 'fe80::1%nosuchif0', 'a\0b' } do
  print(('new %q:'):format(bad), try(A.new, bad))
end
print('new number:', try(A.new, 42))
print('tostring bad port:', try(ip.tostring, a, 70000))
print('tostring bad addr:', try(ip.tostring, {}, 1))
print('toendpoint no port:', try(ip.toendpoint, '1.2.3.4'))
print('toendpoint big port:', try(ip.toendpoint, '1.2.3.4:65536'))
print('toendpoint bad host:', try(ip.toendpoint, 'x:1'))
print('toendpoint number:', try(ip.toendpoint, 1))
print('unknown property:', try(function() return a.nope end))
print('assign field:', try(function() a.scope_id = 3 end))
print('forged to_v6:', try(a.to_v6, {}))
