-- A pool of workers, each on its own thread (inherit_context = false):
-- jobs go out round-robin, results come back to one inbox, and monitors
-- tell when each worker has ended.
local inbox = require 'inbox'

if _CONTEXT == 'worker' then
  local back = inbox:receive()
  while true do
    local ok, job = pcall(inbox.receive, inbox)
    if not ok then break end -- no_senders: the pool was closed
    local x = 0
    for i = 1, job.n do x = x + i % 7 end
    back:send({ id = job.id, result = x })
  end
  return
end

local POOL, JOBS = 4, 12
local workers = {}
for i = 1, POOL do
  workers[i] = spawn_vm({ module = '.', inherit_context = false, monitor = true })
  workers[i]:send(inbox)
end
-- each send waits until a worker took the job, so hand them out from
-- fibers: the workers run in parallel
for id = 1, JOBS do
  spawn(function() workers[id % POOL + 1]:send({ id = id, n = id * 100000 }) end)
end
local results = {}
for _ = 1, JOBS do
  local r = inbox:receive()
  results[r.id] = r.result
end
for id = 1, JOBS do print('job', id, results[id]) end
-- closing every handle lets the workers' receive fail with no_senders
for i = 1, POOL do workers[i]:close() end
local ended = 0
while ended < POOL do
  local notice = inbox:receive()
  if notice.monitor == 'ended' then ended = ended + 1 end
end
print('all', ended, 'workers ended')
