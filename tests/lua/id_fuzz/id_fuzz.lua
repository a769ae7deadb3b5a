-- Fuzzes `require` ids against the loader's oracle: whatever the id (random
-- prefixes, components, separators, symlinks out of this directory, from
-- the root, a leaf and a package), require either loads a module beneath
-- this directory or fails with one of the documented errors; code outside
-- the root never runs (it would print ESCAPED).
local allowed = {
  ['emilua.core'] = { [1] = true, [2] = true, [3] = true, [4] = true, [5] = true },
  ['luring.module'] = { [1] = true, [2] = true, [3] = true },
}
local generic_error = require 'generic_error'
allowed.system = {
  [generic_error.EISDIR.code] = true, [generic_error.ELOOP.code] = true,
  [generic_error.ENAMETOOLONG.code] = true,
}
local root = tostring(_FILE):match('^(.*)/[^/]*$')
local prefixes = { '', './', '../', '../../', '/', '//', './/', '/./', '/../' }
local parts = { 'a', 'b', 'pkg', 'c', 'out', 'outdir', 'outside_marker', 'abs', 'cyc',
  'bad', 'init', 'leaf', '..', '.', '', 'a-b', 'A', '_', 'a\0b', 'fixtures', 'id_fuzz' }
math.randomseed(6)
local function random_id()
  local id = prefixes[math.random(#prefixes)]
  local n = math.random(3)
  for i = 1, n do
    id = id .. parts[math.random(#parts)]
    if i < n then id = id .. '/' end
  end
  if math.random(10) == 1 then id = id .. '/' end
  return id
end
local summary = {}
local function fuzz(where)
  local tried, loaded, unexpected, seen = 0, 0, {}, {}
  for _ = 1, 1500 do
    local id = random_id()
    tried = tried + 1
    local ok, e = pcall(require, id)
    if ok then
      if type(e) ~= 'table' or e.escaped or getmetatable(e._FILE) ~= 'filesystem.path'
        or tostring(e._FILE):sub(1, #root + 1) ~= root .. '/' then
        unexpected[#unexpected + 1] = 'loaded outside: ' .. id
      end
      loaded = loaded + 1
    elseif type(e) == 'string' then
      seen.syntax = true
      if not e:match('bad%.lua:1:') then unexpected[#unexpected + 1] = id .. ': ' .. e end
    elseif type(e) ~= 'table' or not allowed[tostring(e.category)]
      or not allowed[tostring(e.category)][e.code] then
      unexpected[#unexpected + 1] = id .. ': ' .. tostring(e)
    else
      seen[tostring(e.category) .. ' ' .. e.code] = true
    end
  end
  -- the cases the oracle must have met (booleans keep the output stable)
  local met = {}
  for _, k in ipairs({ 'emilua.core 1', 'emilua.core 2', 'emilua.core 4',
                       'luring.module 1', 'syntax' }) do
    met[#met + 1] = k .. '=' .. tostring(seen[k] == true)
  end
  summary[#summary + 1] = string.format('%s: %d ids, some loaded: %s, met: %s, unexpected: %d %s',
    where, tried, tostring(loaded > 0), table.concat(met, ' '), #unexpected,
    table.concat(unexpected, '; '))
end
fuzz('root')
this_fiber.local_.fuzz = fuzz
require './fuzz_leaf'
this_fiber.local_.fuzz = fuzz
require './fuzz_pkg'
for _, line in ipairs(summary) do print(line) end
