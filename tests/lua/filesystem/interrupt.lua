-- file system calls are interruption points (ring ops and blocking-pool
-- jobs alike); many calls in flight from many fibers leave no fd behind,
-- and the VM's other fibers run while they wait
local fs = require 'filesystem'
local dir = fs.temp_directory_path() / ('luring-fs-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
-- Open fds, without eventfds: each blocking-pool job has one, which its
-- pool thread lets go of a moment after the job completed (the listing
-- below is such a job).
local function fds()
  local n = 0
  for e in fs.directory_iterator('/proc/self/fd') do
    local ok, target = pcall(fs.read_symlink, e.path)
    if ok and tostring(target) ~= 'anon_inode:[eventfd]' then n = n + 1 end
  end
  return n
end
local before = fds()

-- interrupted before it could start: nothing is done
for _, c in ipairs{
  { 'create_directory (ring op)', function() fs.create_directory(dir / 'x') end },
  { 'canonical (pool job)', function() fs.canonical(dir) end },
  { 'remove_all (pool job)', function() fs.remove_all(dir) end },
} do
  local f = spawn(function()
    c[2]()
    print(c[1], 'ran to the end')
  end)
  f:interrupt()
  f:join()
  print(c[1], 'interrupted')
end
print('nothing done:', fs.exists(dir), fs.exists(dir / 'x'))

-- interrupted while waiting: the op finishes or is cancelled, either way
-- the fiber sees `interrupted` or the real result, never half of one
local results = {}
for i = 1, 20 do
  local f = spawn(function()
    local ok, e = pcall(fs.create_directory, dir / ('d' .. i))
    results[#results + 1] = ok and 'done' or tostring(e)
  end)
  this_fiber.yield()
  f:interrupt()
  f:join()
end
local outcomes = {}
for _, r in ipairs(results) do outcomes[r] = true end
for k in pairs(outcomes) do
  assert(k == 'done' or k == 'Fiber interrupted', k)
end
print('outcomes are results or interruptions:', #results)

-- 4 fibers x 50 status + listing calls while a ticker fiber runs
local ticks, running = 0, true
local ticker = spawn(function()
  while running do ticks = ticks + 1 this_fiber.yield() end
end)
local workers = {}
for w = 1, 4 do
  workers[w] = spawn(function()
    for i = 1, 50 do
      fs.status(dir)
      for _ in fs.directory_iterator(dir) do end
      fs.canonical(dir)
    end
  end)
end
for _, f in ipairs(workers) do f:join() end
running = false
ticker:join()
print('ticker ran meanwhile:', ticks > 4)

fs.remove_all(dir)
print('fds leaked:', fds() - before)
