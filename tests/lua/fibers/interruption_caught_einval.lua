-- interruption_caught is only readable after a successful join
local function try(f)
  local ok, e = pcall(function() return f.interruption_caught end)
  print(ok, tostring(e.category), tostring(e))
end
local f = spawn(function() error('x', 0) end)
try(f)                  -- not joined yet
pcall(f.join, f)
print(f.interruption_caught)
local g = spawn(function() end)
g:detach()
try(g)                  -- detached
