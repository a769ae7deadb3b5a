-- Error values (spec/core.md §7): tables {code=, category=} sharing one
-- metatable; categories are userdata whose tostring is their name.
--
-- Invariant: the runtime's own inspection of an error value (is_interrupted,
-- error_message, normalize_error) never runs user code: it compares
-- metatables and categories by identity and reads fields with rawget, so a
-- forged or hostile value (a table whose __metatable says 'error_code',
-- raising __index/__eq/__tostring, userdata, threads, ...) cannot raise or
-- yield there.
local K = ...
local rt = K.rt
local setmetatable, tostring, type, rawget, pairs = setmetatable, tostring, type, rawget, pairs
-- Runtime values are recognised by their real metatable, never by the name
-- `getmetatable` shows (any table can claim that name), and the runtime
-- never calls a metamethod of a value user code could have built.
local raw_getmetatable, raw_pcall = K.debug.getmetatable, pcall

local error_mt = { __metatable = 'error_code' }
local error_methods = {}

local categories = {}
local message_of = {}  -- category userdata -> function(code) -> message
local name_of = {}     -- category userdata -> name
-- Every category shares the first one's metatable (`newproxy(first)`):
-- a metatable, an __index table and two closures of its own cost each
-- category ~300 bytes in every VM.
local first_category
local function category(name, message)
  local c
  if first_category then
    c = newproxy(first_category)
  else
    c = newproxy(true)
    local mt = getmetatable(c)
    mt.__tostring = function(cat) return name_of[cat] end
    mt.__index = {
      message = function(cat, code)
        local m = message_of[cat]
        if not m then error("bad argument #1 to 'message' (error category expected)", 2) end
        return m(code)
      end,
    }
    mt.__metatable = 'error_category'
    first_category = c
  end
  categories[name] = c
  message_of[c] = message
  name_of[c] = name
  return c
end
K.category = category

local function strerror(code) return rt.strerror(code) end
local system = category('system', strerror)
local generic = category('generic', strerror)

-- The runtime's own error codes, by name (Emilua's core errors, in its
-- order: the codes are the ones its messages are looked up by).
local core_code = {
  invalid_module_name = 1, module_not_found = 2,
  root_cannot_import_parent = 3, cyclic_import = 4,
  leaf_cannot_import_child = 5, only_main_fiber_may_import = 6,
  bad_root_context = 7, bad_index = 8, bad_coroutine = 9,
  suspension_already_allowed = 10, interruption_already_allowed = 11,
  forbid_suspend_block = 12, interrupted = 13, unmatched_scope_cleanup = 14,
  channel_closed = 15, no_senders = 16, internal_module = 17,
  raise_error = 18, bad_rdf = 19, bad_rdf_module = 20,
  bad_rdf_error_category = 21, broken_promise = 22,
  promise_already_satisfied = 23, current_module_not_known = 24,
}
-- The messages of the runtime's own categories live in Rust
-- (src/actor/vm.rs `error_text`): a VM makes a message's string only when
-- it shows one. A code without a message (or not a number) has ''.
local error_text = rt.error_text
local function messages(name)
  return function(code)
    if type(code) ~= 'number' then return '' end
    return error_text(name, code)
  end
end
local core = category('emilua.core', messages('emilua.core'))
-- Categories most VMs never see are made on their first lookup in
-- `categories` (a decoded Rust error, io_object.lua's eof): the JSON ones
-- (trial.protocol.json is Emilua's JSON lexer category, with a message for
-- every code) and asio.misc. Plain Lua: also while the VM closes.
local lazy_categories = {
  ['emilua.json.dom'] = true, ['trial.protocol.json'] = true, ['asio.misc'] = true,
}
setmetatable(categories, {
  __index = function(_, name)
    if lazy_categories[name] then return category(name, messages(name)) end
  end,
})

local function new(cat, code, arg)
  return setmetatable({ code = code, category = cat, arg = arg }, error_mt)
end
K.new_error = new

error_mt.__tostring = function(e) return e.category:message(e.code) end
error_mt.__eq = function(a, b)
  return a.code == b.code and a.category == b.category
end
error_mt.__index = error_methods
function error_methods.togeneric(e)
  if e.category == system then return new(generic, e.code) end
  return e
end

-- Raising helpers used by every core file. Level 0: no position prefix.
function K.raise_core(name, extra_key, extra_value)
  local e = new(core, core_code[name])
  if extra_key then e[extra_key] = extra_value end
  error(e, 0)
end
function K.raise_errno(errno, arg)
  error(new(generic, errno, arg), 0)
end
function K.system_error(errno) return new(system, errno) end
function K.generic_error(errno, arg) return new(generic, errno, arg) end

-- operation_aborted: asio reports it through the system category (ECANCELED).
K.operation_aborted = function() return new(system, rt.errno.ECANCELED) end

local function is_error_code(e)
  return type(e) == 'table' and raw_getmetatable(e) == error_mt
end

function K.is_interrupted(e)
  return is_error_code(e) and rawget(e, 'category') == core and rawget(e, 'code') == 13
end

-- Strings LuaJIT raises on the runtime's behalf (with the runtime's own
-- location), by the message to show instead; see K.rename_error.
local renamed = {}
function K.rename_error(raw, message) renamed[raw] = message end

-- Turns a wrapped Rust error (userdata) into the error table it stands for
-- and a renamed LuaJIT message into its replacement.
local decode = rt.decode_error
function K.normalize_error(e)
  local t = type(e)
  if t == 'string' then return renamed[e] or e end
  if t == 'userdata' then
    local cat, code, arg, fields = decode(e)
    if code then
      local err = new(categories[cat], code, arg)
      if fields then for k, v in pairs(fields) do err[k] = v end end
      return err
    end
    if cat then return cat end
  end
  return e
end

-- What a panic report prints for an error value (§7 last bullet).
-- Reports call it from finalizers and the scheduler, so it calls no user
-- metamethod (a user table may fake __metatable = 'error_code') and cannot
-- raise whatever the fields hold.
function K.error_message(e)
  if type(e) == 'string' then return e end
  if is_error_code(e) then
    -- fields of a real error value may still have been replaced
    local message, code = message_of[rawget(e, 'category')], rawget(e, 'code')
    if message and type(code) == 'number' and code % 1 == 0
      and code >= -2147483648 and code <= 2147483647 then
      local ok, text = raw_pcall(message, code)
      if ok and type(text) == 'string' then return text end
    end
  end
  return ''
end

-- Metatable of a runtime object type: `methods`, read-only `props` (each a
-- function of the object), `bad_index` for any other key, EPERM on
-- assignment. `mt` may be an existing metatable (e.g. of a newproxy).
function K.class(name, methods, props, mt)
  mt = mt or {}
  mt.__metatable = name
  mt.__index = function(obj, k)
    local m = methods[k]
    if m then return m end
    local p = props and props[k]
    if p then return p(obj) end
    K.raise_core('bad_index', 'index', 2)
  end
  mt.__newindex = function() K.raise_errno(rt.errno.EPERM) end
  return mt
end

-- The generic_error module: errno names as generic error objects, built
-- on first require (~80 objects every VM would otherwise keep).
K.builtin_modules.generic_error = function()
  local generic_error = {}
  for name, value in pairs(rt.errno_names()) do generic_error[name] = new(generic, value) end
  return generic_error
end
K.categories = categories
