-- fiber methods recognise a handle by the runtime's own metatable: any
-- other value (a function, whose env is a user table, a table claiming to
-- be a fiber, a promise, a string) gets EINVAL and is never read as a
-- fiber record; the real handle is unaffected
local future = require 'future'
results, detached = false, false -- globals a forged record would read
local h = spawn(function() return 'real' end)
local fakes = {
  { 'function', function() end },
  { 'table claiming fiber', setmetatable({}, { __metatable = 'fiber' }) },
  { 'promise', (future.new()) },
  { 'string', 'x' },
  { 'nil', nil },
}
for _, name in ipairs({ 'join', 'detach', 'interrupt' }) do
  for _, fake in ipairs(fakes) do
    local ok, err = pcall(h[name], fake[2])
    print(name, fake[1], ok, tostring(err))
  end
end
print('real handle:', h.joinable, h:join())
