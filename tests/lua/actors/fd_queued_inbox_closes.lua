-- fds in messages still queued when the receiver closes its inbox are
-- closed with those messages: the senders get channel_closed, and fresh
-- descriptors afterwards get the same numbers as before the sends (the
-- kernel hands out the lowest free number, so one leaked copy would show).
-- The worker has a read pending on a pipe before the first probe (its VM
-- makes its ring with its first op: on another thread that would race
-- with the probes) and stays blocked there until both probes ran, so its
-- own descriptors do not move the numbers; the next run starts once the
-- monitor notice says it ended (its VM and ring are gone by then). On the
-- same thread and on another one.
local inbox = require 'inbox'
local pipe = require 'pipe'
if _CONTEXT == 'worker' then
  local setup = inbox:receive()
  local hold = pipe.read_stream.new(setup.hold)
  local holder = spawn(function() pcall(hold.read_some, hold, byte_span.new(1)) end)
  this_fiber.yield() -- the holder's read is submitted
  setup.back:send('holding')
  local m = inbox:receive()
  m.fd:close()
  inbox:close()
  setup.back:send('closed')
  holder:join()
  return
end

-- The highest number of 128 fresh descriptors: every leaked descriptor
-- below it raises it by one.
local function probe()
  local fds = {}
  for i = 1, 64 do
    local r, w = pipe.pair()
    fds[2 * i - 1], fds[2 * i] = r:release(), w:release()
  end
  local highest = tostring(fds[128])
  for _, fd in ipairs(fds) do fd:close() end
  return highest
end

local function run(name, worker)
  local hold_r, hold_w = pipe.pair()
  local hold_fd = hold_r:release()
  worker:send({ back = inbox, hold = hold_fd })
  hold_fd:close()
  assert(inbox:receive() == 'holding')
  local before = probe()
  local results = {}
  local fibers = {}
  for i = 1, 20 do
    fibers[i] = spawn(function()
      local r, w = pipe.pair()
      local fd = r:release()
      local ok, e = pcall(worker.send, worker, { fd = fd })
      results[#results + 1] = ok and 'delivered' or tostring(e)
      fd:close()
      w:close()
    end)
  end
  for i = 1, 20 do fibers[i]:join() end
  print(name, inbox:receive())
  local counts = {}
  for _, r in ipairs(results) do counts[r] = (counts[r] or 0) + 1 end
  print(name, 'delivered', counts.delivered, 'channel_closed', counts['Channel closed'])
  collectgarbage()
  local after = probe()
  print(name, 'same numbers after', after == before)
  hold_w:close()
  print(name, inbox:receive().monitor)
end

run('same thread', spawn_vm({ module = '.', monitor = true }))
run('other thread', spawn_vm({ module = '.', inherit_context = false, monitor = true }))
