-- pipe (spec/io.md "pipe"): read_stream and write_stream objects over a
-- pipe's two ends, their reads and writes being ring ops
-- (src/modules/pipe.rs gives the primitives P; lua/io_object.lua the
-- shared object machinery IO and its invariants).
local K, P, IO = ...
local state_of, run_op, run_op_inline = IO.state_of, IO.run_op, IO.run_op_inline
local run_fast, FAST_READ_WAIT, FAST_WRITE = IO.run_fast, IO.FAST_READ_WAIT, IO.FAST_WRITE
local error, type = error, type
-- The primitive a fast read falls back on (src/modules/fast_io.rs).
local function read_slow(_, holder, buf) return P.read(holder, buf) end

local props = IO.common_props()
local read_methods = IO.common_methods({})
local write_methods = IO.common_methods({})
local read_mt = IO.class('pipe.read_stream', read_methods, props)
local write_mt = IO.class('pipe.write_stream', write_methods, props)

function read_methods.read_some(self, buf)
  local st = state_of(self, read_mt)
  IO.check_read_buffer(buf)
  local n = run_fast(st, FAST_READ_WAIT, read_slow, buf)
  if n == 0 and #buf > 0 then error(IO.eof(), 0) end
  return n
end

function write_methods.write_some(self, buf)
  local st = state_of(self, write_mt)
  IO.check_write_buffer(buf)
  if type(buf) == 'string' then return run_op_inline(st, P.write, buf) end
  return run_fast(st, FAST_WRITE, P.write, buf)
end

local pipe = {
  read_stream = IO.constructor(read_mt),
  write_stream = IO.constructor(write_mt),
}

function pipe.pair()
  local r, w = P.pair()
  return IO.new_object(read_mt, r), IO.new_object(write_mt, w)
end

return pipe
