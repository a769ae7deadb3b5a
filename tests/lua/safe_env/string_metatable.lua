-- The string metatable is locked: getmetatable('') gives its name, string
-- methods index a private copy of the string library, and changing this
-- module's `string` table changes neither string methods nor the loader.
print(getmetatable(''), getmetatable('x') == getmetatable(''))
print(pcall(setmetatable, 'x', {}))
-- the reported attack: patch `match` in the string metatable's __index
print(pcall(function() getmetatable('').__index.match = function() return true end end))
print(('abc'):upper(), ('a,b'):match('(%a),'), ('x'):rep(3), #('abc'):sub(2))
print(('x').dump, ('x').nonexistent)
string.upper = function() return 'patched' end
string.trim = function(s) return s end
print(('abc'):upper(), ('abc').trim)
-- the loader's own name checks keep working however string is patched
string.match = function() return true end
string.sub = function() return './' end
string.find = function() return 1 end
string.gmatch = function() return function() return nil end end
string.byte = function() return 0 end
for _, id in ipairs({ '../escape', '/../escape', './a/b', './..', '/fixtures/..', 'a-b' }) do
  local ok, e = pcall(require, id)
  print(id, ok, tostring(e))
end
-- a module that patches its string table does not affect the importer
require '/fixtures/string_patcher'
print(('abc'):upper(), string.format('%d', 1), string.rep('y', 2))
