-- A worker VM's start (K.start_worker, lua/core/modules.lua): loaded for
-- that one call and not kept, so an idle actor holds none of its code.
-- Runs with the runtime's globals as its env; `M` is modules.lua's shared
-- state (the table lua/core/loader.lua gets too).
local K, M = ...
local s_sub = string.sub

-- In the new VM: `src` (read from `path`) becomes its main fiber, with
-- _CONTEXT 'worker'; it is a leaf unless it is an init.lua.
return function(src, identity, path, display, root, display_root, is_init)
  local env = M.new_env('worker', path)
  local fn, err = M.raw_load(src, '@' .. display, 't', env)
  if not fn then return false, err end
  M.loaded[identity] = 'loading'
  M.identity_of[s_sub(path, #root + 2)] = identity
  local info = {
    root = root, display_root = display_root,
    dir = M.dirname(path), display_dir = M.display_dirname(display),
    leaf = not is_init, is_root = false,
  }
  M.module_of_env[env] = { info = info, path = path, display = display }
  local mf = K.new_fiber(fn, nil, {
    is_main = true, vm_main = true, module_info = info, env = env,
  })
  K.vm_id = K.hexid(mf)
  return true
end
