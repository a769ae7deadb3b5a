-- Shared by the tests of this folder (no .out: not a case itself).
-- count(): counts this process's open fds, leaving out eventfds: each blocking-pool
-- job has one, which its pool thread lets go of a moment after the job
-- completed (the listing here is such a job).
local fs = require 'filesystem'
function count()
  local n = 0
  for e in fs.directory_iterator('/proc/self/fd') do
    local ok, target = pcall(fs.read_symlink, e.path)
    if ok and tostring(target) ~= 'anon_inode:[eventfd]' then n = n + 1 end
  end
  return n
end
