-- Each Lua thread has its own scopes (pcall and scope bound the handlers
-- pushed in them): a fiber's own, a user coroutine's (also one that
-- suspended its fiber), a gsub callback's (pcall skips a lookup of the
-- running coroutine only in a fiber's own coroutine at C depth 0).
local log = {}
local function note(s) log[#log + 1] = s end
local co = coroutine.create(function()
  scope_cleanup_push(function() note('co root handler') end)
  pcall(function()
    scope_cleanup_push(function() note('co pcall handler') end)
    this_fiber.yield() -- suspends the main fiber from inside the coroutine
    note('co resumed')
  end)
  note('co after pcall')
end)
local other = spawn(function()
  -- runs while main is suspended inside `co`
  pcall(function()
    scope_cleanup_push(function() note('other pcall handler') end)
  end)
  note('other after pcall')
end)
scope(function()
  scope_cleanup_push(function() note('main scope handler') end)
  print('resume', coroutine.resume(co))
  note('main after resume')
end)
other:join()
string.gsub('ab', '%w', function(c)
  pcall(function() scope_cleanup_push(function() note('gsub handler ' .. c) end) end)
end)
for _, l in ipairs(log) do print(l) end
