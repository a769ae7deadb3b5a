-- recursive_directory_iterator's control object: disable_recursion_pending,
-- pop, depth and recursion_pending, and their argument errors
local fs = require 'filesystem'
local file = require 'file'
local function touch(p)
  local f = file.stream.new()
  f:open(p, bit.bor(file.open_flag.write_only, file.open_flag.create))
  f:close()
end
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok' end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local dir = fs.temp_directory_path() / ('luring-walk-' .. tostring({}):match('0x(%x+)'))
fs.create_directories(dir / 'skip/deep')
touch(dir / 'skip/deep/x')
touch(dir / 'skip/y')
fs.create_directories(dir / 'two')
touch(dir / 'two/p')
touch(dir / 'two/q')
touch(dir / 'top')
local function rel(p) return tostring(p:lexically_relative(dir)) end

-- the whole tree
local all = {}
for e in fs.recursive_directory_iterator(dir) do all[#all + 1] = rel(e.path) .. '@' .. e.depth end
table.sort(all)
print('all:', table.concat(all, ' '))

-- disable_recursion_pending on 'skip': nothing beneath it is listed
local seen, states = {}, {}
local iter, it = fs.recursive_directory_iterator(dir)
print('control object:', getmetatable(it))
for e in iter, it do
  seen[#seen + 1] = rel(e.path)
  if e.path.filename == fs.path.new('skip') then
    states[#states + 1] = 'before: pending=' .. tostring(it.recursion_pending) .. ' depth=' .. it.depth
    it:disable_recursion_pending()
    states[#states + 1] = 'after: pending=' .. tostring(it.recursion_pending)
  end
end
table.sort(seen)
print('without skip/:', table.concat(seen, ' '))
print(table.concat(states, '; '))

-- pop inside 'two' after its first entry: the other one is not listed,
-- the walk goes on in the parent
local inside_two, rest = 0, {}
iter, it = fs.recursive_directory_iterator(dir)
for e in iter do
  local r = rel(e.path)
  if r:match('^two/') then
    inside_two = inside_two + 1
    print('depth in two:', it.depth)
    it:pop()
  else
    rest[#rest + 1] = r
  end
end
table.sort(rest)
print('entries of two/ seen:', inside_two)
print('the rest:', table.concat(rest, ' '))

-- pop at depth 0 ends the walk
local count = 0
iter, it = fs.recursive_directory_iterator(dir)
for _ in iter do
  count = count + 1
  it:pop()
end
print('pop at the top ends it after', count, 'entry')
print('pop after the end:', try(it.pop, it))

-- errors
print('pop bad self:', try(it.pop, {}))
print('disable bad self:', try(it.disable_recursion_pending, 42))
print('unknown field:', try(function() return it.nope end))

fs.remove_all(dir)
