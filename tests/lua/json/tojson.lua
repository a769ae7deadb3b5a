-- the __tojson hook (read raw from the real metatable)
local json = require 'json'
local function try(...)
    local ok, r = pcall(json.encode, ...)
    if ok then print(r) else print('error', tostring(r), r.category, r.code, r.arg) end
end

local point_mt = {
    __tojson = function(p, state)
        local w = state.writer
        w:begin_array()
        w:value(p.x)
        w:value(p.y)
        w:end_array()
    end,
}
local function point(x, y) return setmetatable({ x = x, y = y }, point_mt) end
try(point(1, 2))
try({ a = point(3, 4), list = { point(5, 6) } })

print('state')
local seen
local probe_mt = {
    __tojson = function(self, state)
        seen = state
        print('visited self:', state.visited[self], 'indent:', state.indent,
              'level:', state.writer.level)
        state.writer:value('probe')
    end,
}
try({ p = setmetatable({}, probe_mt) })
try({ p = setmetatable({}, probe_mt) }, { indent = ' ' })

print('delegating with json.encode(v, {state = state})')
local box_mt = {
    __tojson = function(self, state)
        local w = state.writer
        w:begin_object()
        w:value('boxed')
        print('returns', select('#', json.encode(self.inner, { state = state })))
        w:end_object()
    end,
}
local function box(v) return setmetatable({ inner = v }, box_mt) end
try(box({ 1, 2, box('x') }))
try(box(box(box(json.null))), { indent = '  ' })

print('cycles through __tojson')
local loop = box(nil)
loop.inner = loop
try(loop)
local l1, l2 = box(nil), box(nil)
l1.inner, l2.inner = { l2 }, { l1 }
try(l1)

print('__tojson must write exactly one value')
local function custom(f) return setmetatable({}, { __tojson = f }) end
try(custom(function() end))
try({ custom(function() end) })
try({ k = custom(function() end) })
try(custom(function(_, s) s.writer:value(1) s.writer:value(2) end))
try({ custom(function(_, s) s.writer:value(1) s.writer:value(2) end) })
try(custom(function(_, s) s.writer:begin_array() end))
try({ custom(function(_, s) s.writer:end_array() end) })

print('errors inside __tojson')
try(custom(function() error('from tojson', 0) end))
local E = { code = 42 }
print('same value:', select(2, pcall(json.encode, custom(function() error(E) end))) == E)
print('same value, nested:', select(2, pcall(json.encode, { box({ custom(function() error(E) end) }) })) == E)
try(custom(function(_, s) s.writer:value(print) end))
try({ k = custom(function(_, s) s.writer:value(0/0) end) })
-- an error caught inside __tojson stays there
try(custom(function(_, s)
    print('caught:', pcall(json.encode, custom(function() error('inner', 0) end)))
    s.writer:value('recovered')
end))
try(setmetatable({}, { __tojson = 'not a function' }))
try(setmetatable({}, { __tojson = true }))

print('__tojson nesting is bounded (16 levels)')
local function nested(n)
    if n == 0 then return 'leaf' end
    return custom(function(_, state) json.encode(nested(n - 1), { state = state }) end)
end
try(nested(16))
try(nested(17))
print('endless __tojson recursion is bounded')
local function chain()
    return custom(function(_, state) json.encode(chain(), { state = state }) end)
end
try(chain())
local function fresh_chain()
    return custom(function(_, state) state.writer:value(json.encode(fresh_chain())) end)
end
try(fresh_chain())
try({ 'still works' })

print('bogus state')
try(1, { state = {} })
try(1, { state = { writer = {}, visited = {} } })
try(1, { state = { writer = json.writer.new() } })
local w = json.writer.new()
json.encode({ 1, { a = 2 } }, { state = { writer = w, visited = {} } })
print(w:generate())
