-- newproxy is safe: newproxy() and newproxy(false) make plain userdata,
-- newproxy(true) userdata with a fresh metatable (user finalizers). The
-- sharing form newproxy(u), which would hand out a runtime object's
-- metatable, and every other argument are EINVAL.
local future = require 'future'
local generic_error = require 'generic_error'

local plain, plain_false = newproxy(), newproxy(false)
print('plain', type(plain), getmetatable(plain), type(plain_false), getmetatable(plain_false))
local a, b = newproxy(true), newproxy(true)
print('fresh', type(getmetatable(a)), getmetatable(a) ~= getmetatable(b))

local p, fu = future.new()
local handle = spawn(function() end)
local refused = {
  { 'user proxy', a },
  { 'plain proxy', plain },
  { 'promise', p },
  { 'error category', generic_error.EINVAL.category },
  { 'byte_span', byte_span.new(1) },
  { 'fiber handle', handle },
  { 'table', {} },
  { 'number', 1 },
  { 'string', 'x' },
  { 'function', print },
}
for _, case in ipairs(refused) do
  local ok, e = pcall(newproxy, case[2])
  print('newproxy(' .. case[1] .. ')', ok, ok and type(e) or (e == generic_error.EINVAL and 'EINVAL' or tostring(e)))
end

-- A look-alike made any other way is still refused: the runtime recognises
-- its objects by their real metatable, not by the name a user one claims.
local fake = newproxy(true)
local fake_mt = getmetatable(fake)
fake_mt.__index = function() return 'forged' end
fake_mt.__metatable = 'promise'
print('forged promise', getmetatable(fake), pcall(p.set_value, fake, 1))
local fake_fiber = newproxy(true)
getmetatable(fake_fiber).__metatable = 'fiber'
print('forged fiber', pcall(handle.join, fake_fiber))
print('real objects still work', p:set_value(42), fu:get(), handle:join())
