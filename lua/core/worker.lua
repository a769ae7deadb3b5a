-- A worker VM's start (K.start_worker, lua/core/modules.lua): loaded for
-- that one call and not kept, so an idle actor holds none of its code.
-- Runs with the runtime's globals as its env; its arguments after `K` are
-- modules.lua's shared state (what lua/core/loader.lua gets too).
local K, raw_load, _, loaded, identity_of, module_of_env, new_env,
  _, dirname, display_dirname = ...
local s_sub = string.sub

-- In the new VM: `src` (read from `path`) becomes its main fiber, with
-- _CONTEXT 'worker'; it is a leaf unless it is an init.lua.
return function(src, identity, path, display, root, display_root, is_init)
  local env = new_env('worker', path)
  local fn, err = raw_load(src, '@' .. display, 't', env)
  if not fn then return false, err end
  loaded[identity] = 'loading'
  identity_of[s_sub(path, #root + 2)] = identity
  local info = {
    root = root, display_root = display_root,
    dir = dirname(path), display_dir = display_dirname(display),
    leaf = not is_init, is_root = false,
  }
  module_of_env[env] = { info = info, path = path, display = display }
  local mf = K.new_fiber(fn, nil, {
    is_main = true, vm_main = true, module_info = info, env = env,
  })
  K.vm_id = K.hexid(mf)
  return true
end
