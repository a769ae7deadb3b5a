-- options: --memory-limit 16M
-- exit: 1
-- A memory bomb caught by pcall as the very first thing a VM does (its
-- Lua stack has never grown, no error was ever caught): the error is
-- caught and the VM goes on; it used to be closed (LUA_ERRMEM outside any
-- handler: handling the error needed memory the bomb's garbage still
-- held). After a refusal the heap may take a small reserve more, never
-- much more: a second bomb right after is refused again.
local ok, e = pcall(function()
  local t = {}
  while true do t[#t + 1] = {} end
end)
print('caught:', ok, e)
local ok2, e2 = pcall(function()
  local t = {}
  while true do t[#t + 1] = {} end
end)
print('again:', ok2, e2, collectgarbage('count') < 16 * 1024 + 64)
-- and an uncaught error right after a bomb gets its report
local ok3 = pcall(function() local t = {} while true do t[#t + 1] = ('x'):rep(100) .. #t end end)
error('after the bomb: ' .. tostring(ok3))
