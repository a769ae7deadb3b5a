-- Misbehaves: tries to read the host's /etc/passwd and to reach the
-- network, and reports what happened (both are refused).
local file = require 'file'
local ip = require 'ip'
local m = require('inbox'):receive()
local function try(f)
  local ok, e = pcall(f)
  return ok and 'succeeded!' or 'refused (' .. tostring(e) .. ')'
end
local open = try(function()
  local f = file.stream.new()
  f:open('/etc/passwd', file.open_flag.read_only)
end)
local connect = try(function()
  local s = ip.tcp.socket.new()
  s:connect(ip.address.loopback_v4(), 80)
end)
m.reply:send{ result = 'open /etc/passwd: ' .. open .. '; connect: ' .. connect }
