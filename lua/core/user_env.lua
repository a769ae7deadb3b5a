-- What user code gets as load, loadstring, getfenv, setfenv and newproxy,
-- a lazy core chunk: the stubs in lua/core/modules.lua load it (through
-- K.load_lazy_chunk) at a VM's first call of one of them and tail-call
-- these, so levels count from the user's call as if they were called
-- directly. Its arguments after `K`: what of modules.lua's boot-time
-- captures this needs (the runtime's globals, this chunk's env, no longer
-- hold `load` after boot).
--
-- Invariants (those of lua/core/modules.lua): user code never reaches the
-- runtime's own environments (getfenv answers nil for them, setfenv
-- refuses them); only source text loads; newproxy cannot share a runtime
-- object's metatable.
local K, raw_load, raw_getfenv, raw_setfenv, raw_newproxy, REAL_G, NO_GLOBALS = ...
local E = K.rt.errno
local raise_errno = K.raise_errno
local type, error = type, error
local s_byte = string.byte

local function is_runtime_env(e)
  return e == REAL_G or e == NO_GLOBALS
end

local BINARY_REFUSED = 'binary chunks are refused: load() takes Lua source text only'

-- load/loadstring: source text only. Without an env the chunk gets the
-- calling thread's globals (Lua 5.1 semantics), which are always the
-- module's own (or NO_GLOBALS on the main thread).
local function text_only_load(chunk, chunkname, mode, env)
  if type(chunk) == 'string' and s_byte(chunk, 1) == 27 then
    return nil, BINARY_REFUSED
  end
  if mode ~= nil and mode ~= 't' then
    return nil, "binary chunks are refused: load() accepts only mode 't'"
  end
  if type(chunk) == 'function' then
    -- A reader may deliver a binary signature in its first piece.
    local first = true
    local reader = chunk
    chunk = function()
      local piece = reader()
      if first and type(piece) == 'string' and piece ~= '' then
        first = false
        if s_byte(piece, 1) == 27 then error(BINARY_REFUSED, 0) end
      end
      return piece
    end
  end
  if env == nil then return raw_load(chunk, chunkname, 't') end
  return raw_load(chunk, chunkname, 't', env)
end

-- getfenv/setfenv as user code sees them: a function or level whose env is
-- the runtime's answers nil and cannot be changed. `level_arg` checks the
-- argument like Lua does and returns the user's level (or the function).
local function level_arg(x, name)
  if x == nil then return 1 end
  if type(x) == 'function' then return x end
  if type(x) ~= 'number' then
    error("bad argument #1 to '" .. name .. "' (number expected, got " .. type(x) .. ')', 3)
  end
  if x < 0 then error("bad argument #1 to '" .. name .. "' (level must be non-negative)", 3) end
  if x % 1 ~= 0 then error("bad argument #1 to '" .. name .. "' (level must be an integer)", 3) end
  return x
end

-- The env at the user's level `n` (or of function `n`). Frames between
-- raw_getfenv and the user: raw_pcall, env_at, user_getfenv/user_setfenv.
local function env_at(n, name)
  if type(n) == 'number' and n > 0 then n = n + 3 end
  local ok, e = K.raw_pcall(raw_getfenv, n)
  if not ok then error("bad argument #1 to '" .. name .. "' (invalid level)", 3) end
  return e
end

local function user_getfenv(x)
  local e = env_at(level_arg(x, 'getfenv'), 'getfenv')
  if is_runtime_env(e) then return nil end
  return e
end

local function user_setfenv(x, t)
  local n = level_arg(x, 'setfenv')
  if type(t) ~= 'table' then
    error("bad argument #2 to 'setfenv' (table expected, got " .. type(t) .. ')', 2)
  end
  if is_runtime_env(env_at(n, 'setfenv')) then raise_errno(E.EPERM) end
  -- level n of the user is level n + 2 seen from raw_setfenv under raw_pcall
  local ok, r = K.raw_pcall(raw_setfenv, (type(n) == 'number' and n > 0) and n + 2 or n, t)
  if not ok then
    -- a C function: LuaJIT's message, without the runtime's position
    error("'setfenv' cannot change environment of given object", 2)
  end
  if n ~= 0 then return r end
end

-- newproxy without its sharing form: newproxy(u) gives the new userdata
-- the metatable of `u`, a runtime object's too (a route to forging one).
-- newproxy() / newproxy(false): plain userdata; newproxy(true): userdata
-- with a fresh metatable (user finalizers); anything else is EINVAL.
local function safe_newproxy(with_metatable)
  if with_metatable == nil or with_metatable == false then return raw_newproxy() end
  if with_metatable == true then return raw_newproxy(true) end
  raise_errno(E.EINVAL, 1)
end

return {
  load = text_only_load,
  loadstring = function(s, name) return text_only_load(s, name, 't') end,
  getfenv = user_getfenv,
  setfenv = user_setfenv,
  newproxy = safe_newproxy,
}
