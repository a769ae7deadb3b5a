-- system (spec/io.md "system"): arguments, environment, exit and the
-- standard streams as ring-backed streams. Loaded when a module of the VM
-- first requires 'system' (a lazy core chunk, see modules.lua). Streams
-- hold their fd as an owned object (rt.stdio_fd); `print` is in
-- modules.lua.
local K = ...
local rt = K.rt
local E = rt.errno
local raise_errno = K.raise_errno
local await_op, check_suspend, current = K.await_op, K.check_suspend, K.current
local type, error, setmetatable = type, error, setmetatable

-- fd number -> the stream's methods; lua/system_process.lua adds dup,
-- tcgetpgrp and tcsetpgrp on first `require`.
K.system_stream_methods = {}

local function stream_class(name, fd, readable, n)
  local methods = {}
  K.system_stream_methods[n] = methods
  local mt = K.class(name, methods)
  if readable then
    function methods.read_some(_, buf)
      if not K.is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
      local f = current()
      check_suspend(f)
      local res = await_op(f, rt.read(fd, buf))
      if res < 0 then error(K.system_error(-res), 0) end
      if res == 0 and #buf > 0 then error(K.new_error(K.categories['asio.misc'], 2), 0) end
      return res
    end
  else
    function methods.write_some(_, buf)
      if type(buf) ~= 'string' and not K.is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
      local f = current()
      check_suspend(f)
      local res = await_op(f, rt.write(fd, buf))
      if res < 0 then error(K.system_error(-res), 0) end
      return res
    end
  end
  function methods.isatty() return rt.isatty(fd) end
  return setmetatable({}, mt)
end

local system = {
  in_ = stream_class('system.in', rt.stdio_fd(0), true, 0),
  out = stream_class('system.out', rt.stdio_fd(1), false, 1),
  err = stream_class('system.err', rt.stdio_fd(2), false, 2),
}

function system.exit(code, opts)
  if code == nil then code = 0 end
  if type(code) ~= 'number' or code % 1 ~= 0 then raise_errno(E.EINVAL, 1) end
  if opts ~= nil then
    if type(opts) ~= 'table' then raise_errno(E.EINVAL, 2) end
    local force = opts.force
    if force == 1 then raise_errno(E.ENOTSUP) end
    -- quick_exit and abort return only inside an embedding application,
    -- where they end the runtime like a plain exit (abort: code 134).
    if force == 2 then rt.quick_exit(code)
    elseif force == 'abort' then code = rt.abort()
    elseif force ~= nil and force ~= 0 then raise_errno(E.EINVAL, 2) end
  end
  -- Terminating yields to the scheduler: where that is impossible (inside
  -- a C callback) raise before the exit code is set, so nothing changes.
  K.check_yieldable()
  rt.set_exit(code)
  K.terminate_vm()
end

K.builtin_modules.system = function()
  -- The process calls (spawn, signals, ids) are compiled on first use.
  for name, value in next, K.load_system_process() do system[name] = value end
  system.arguments = K.arguments
  system.environment = rt.environment()
  return system
end
