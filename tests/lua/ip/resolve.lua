-- name resolution on the blocking pool: "localhost" and numeric hosts only
local ip = require 'ip'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local list = ip.tcp.get_address_info('localhost', 80)
local all_loopback = #list > 0
for _, r in ipairs(list) do
  all_loopback = all_loopback and r.address.is_loopback and r.port == 80
    and type(r.canonical_name) == 'string'
end
print('localhost:', all_loopback)
list = ip.tcp.get_address_v4_info('127.0.0.1', '8080', ip.address_info_flag.canonical_name)
print('numeric v4:', #list, list[1].address, list[1].port, list[1].canonical_name)
list = ip.udp.get_address_v6_info('::1', 53, ip.address_info_flag.numeric_host)
print('numeric v6:', #list, list[1].address, list[1].port)
list = ip.tcp.get_address_info(nil, 7, ip.address_info_flag.passive)
local any = true
for _, r in ipairs(list) do any = any and r.address.is_unspecified end
print('passive wildcard:', #list > 0 and any)
print('v4 of a v6 literal:', try(ip.tcp.get_address_v4_info, '::1', 1, ip.address_info_flag.numeric_host))
print('not numeric:', try(ip.tcp.get_address_info, 'localhost', 1, ip.address_info_flag.numeric_host))
print('unknown service:', try(ip.tcp.get_address_info, '127.0.0.1', 'no-such-service-luring'))
print('nothing to resolve:', try(ip.tcp.get_address_info, nil, nil))
print('NUL in host:', try(ip.tcp.get_address_info, 'a\0b', 1))
print('host number:', try(ip.tcp.get_address_info, 1, 1))
print('service table:', try(ip.tcp.get_address_info, 'localhost', {}))
print('port out of range:', try(ip.tcp.get_address_info, 'localhost', 70000))
print('flags string:', try(ip.tcp.get_address_info, 'localhost', 1, 'x'))
local host, service = ip.tcp.get_name_info('127.0.0.1', 80)
print('name_info:', type(host), service == 'http' or service == '80')
host, service = ip.udp.get_name_info(ip.address.loopback_v6(), 53)
print('name_info udp:', type(host), service == 'domain' or service == '53')
print('name_info bad port:', try(ip.tcp.get_name_info, '127.0.0.1', -1))
-- an interrupted lookup ends with its result or with interrupted, never hangs
local f = spawn(function() return ip.tcp.get_address_info('localhost', 80) end)
f:interrupt()
local ok, e = pcall(f.join, f)
print('interrupted lookup ends:', ok)
-- many fibers resolve at once while another keeps running
local done, ticks = 0, 0
local ticker = spawn(function()
  while done < 20 do ticks = ticks + 1 this_fiber.yield() end
end)
for _ = 1, 20 do
  spawn(function() ip.tcp.get_address_info('127.0.0.1', 1) done = done + 1 end)
end
ticker:join()
print('20 lookups done, other fiber ran:', done, ticks > 0)
