-- scope, scope_cleanup_push, scope_cleanup_pop and xpcall (moved out of
-- lua/core/scheduler.lua): a lazy core chunk, loaded by a VM's first call
-- of one of their stubs there (most actors never call them, and every VM
-- would otherwise keep their code). It may be loaded at any moment, also
-- by a finalizer while the VM closes: `K.load_lazy_chunk` is a plain C
-- function that builds nothing through mlua.
--
-- Invariants (those of the scheduler's "Scopes"):
-- * The scheduler's C-depth count (`c_depth`), count of cleanup handlers
--   pushed (`scope_pushes`) and guard count stay its locals: this chunk
--   reads them through `state()` and changes them only through
--   `set_depth` and `pushed`.
-- * A scope's handlers run when it ends, on success or error, in the
--   enclosing scope, interruption disabled; a raising handler closes the
--   VM (`forced_close`).
local K, raw_pcall, raw_xpcall, thread_scopes, run_handlers, forced_close, emergency_gc,
  NOT_ENOUGH_MEMORY, current, pcall_tail, state, set_depth, pushed = ...
local E = K.rt.errno
local raise_core, raise_errno, normalize_error = K.raise_core, K.raise_errno, K.normalize_error
local type, error = type, error

local function scope_cleanup_push(h)
  if type(h) ~= 'function' then raise_errno(E.EINVAL, 1) end
  local s = thread_scopes()
  s.n = s.n + 1
  s[s.n] = h
  pushed()
end

local function scope_cleanup_pop(execute)
  local s = thread_scopes()
  if s.n <= s.bound then raise_core('unmatched_scope_cleanup') end
  local h = s[s.n]
  s[s.n] = nil
  s.n = s.n - 1
  if execute == nil or execute then
    local f = current()
    if f then f.int_disabled = f.int_disabled + 1 end
    local ok = raw_pcall(h)
    if f then f.int_disabled = f.int_disabled - 1 end
    if not ok then forced_close() end
  end
end

-- The end of a scope that began with `outer` as the bound and `n0`
-- handlers: the outer bound comes back first, so the handlers run in the
-- enclosing scope. The C depth is restored on success too: a counted call
-- left by an error caught outside the runtime's wrappers (a finalizer's)
-- must not stay counted.
local function scope_tail(s, outer, n0, depth, ok, e)
  s.bound = outer
  set_depth(depth)
  if not ok and e == NOT_ENOUGH_MEMORY then emergency_gc() end
  if s.n > n0 then run_handlers(s, n0) end
  if not ok then error(normalize_error(e), 0) end
end

local function scope(f)
  if type(f) ~= 'function' then raise_errno(E.EINVAL, 1) end
  local s = thread_scopes()
  local outer, n0 = s.bound, s.n
  s.bound = n0
  return scope_tail(s, outer, n0, (state()), raw_pcall(f))
end

local function xpcall(fn, handler, ...)
  local depth, pushes, guards = state()
  local f = current()
  if guards > 0 and f and f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
  local h = handler
  if type(handler) == 'function' then
    h = function(e) return handler(normalize_error(e)) end
  end
  local s = thread_scopes()
  local outer, n0 = s.bound, s.n
  s.bound = n0
  return pcall_tail(s, outer, n0, pushes, depth, raw_xpcall(fn, h, ...))
end

return {
  scope = scope, scope_cleanup_push = scope_cleanup_push,
  scope_cleanup_pop = scope_cleanup_pop, xpcall = xpcall,
}
