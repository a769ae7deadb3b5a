-- filesystem.path: decomposition, queries, modifiers, lexical operations,
-- iteration, operators (pure Lua, no file system access)
local fs = require 'filesystem'
local path = fs.path

local function q(p) return "'" .. tostring(p) .. "'" end
local cases = { '', '/', '//', 'a', '/a', 'a/b', '/a/b/', 'a/b.txt', '/a/.profile',
                'a/b.tar.gz', '.', '..', 'a/..', '/a/./b/../c', 'a//b' }
for _, s in ipairs(cases) do
  local p = path.new(s)
  print(q(s), 'parent=' .. q(p.parent_path), 'filename=' .. q(p.filename),
        'stem=' .. q(p.stem), 'ext=' .. q(p.extension),
        'root=' .. q(p.root_directory), 'rel=' .. q(p.relative_path),
        p.is_absolute and 'abs' or 'rel')
end

local p = path.new('/usr/lib/libx.so')
print('has:', p.has_root_path, p.has_root_name, p.has_filename, p.has_extension,
      path.new('a/').has_filename, p.empty, path.new().empty)

print('join:', q(path.new('a') / 'b'), q(path.new('a/') / 'b'), q(path.new('a') / '/b'),
      q(path.new('') / 'b'), q('x' / path.new('y')))
print('concat:', q(path.new('file') .. '.txt'), q('pre' .. path.new('fix')))
print('replace_extension:', q(p:replace_extension('.a')), q(p:replace_extension('b')),
      q(p:replace_extension()), q(path.new('x'):replace_extension('md')))
print('replace_filename:', q(p:replace_filename('liby.so')), q(path.new('a'):replace_filename('b')))
print('remove_filename:', q(p:remove_filename()), q(path.new('a'):remove_filename()))
print('make_preferred:', q(p:make_preferred()), p:to_generic())

local normal = { '', '.', 'a/./b/..', 'a/../..', '/../a', 'a/b/../', './a/', '/a//b///c',
                 'a/..', '../../x/..', '/.' }
for _, s in ipairs(normal) do print('normal', q(s), q(path.new(s):lexically_normal())) end

local rel = { { '/a/d', '/a/b/c' }, { '/a/b/c', '/a/d' }, { 'a/b/c', 'a' }, { 'a/b/c', 'a/b/c/x/y' },
              { 'a/b', 'c/d' }, { '/a', 'b' }, { 'a', 'a' }, { 'a/b', 'a/b/..' } }
for _, c in ipairs(rel) do
  local a = path.new(c[1])
  print('relative', q(c[1]), q(c[2]), q(a:lexically_relative(c[2])),
        'proximate', q(a:lexically_proximate(c[2])))
end

local els = {}
for e in path.new('/a/b//c/'):iterate() do els[#els + 1] = q(e) end
print('iterate:', table.concat(els, ' '))

print('eq:', path.new('a/b') == path.new('a//b'), path.new('a/b') == path.new('a/c'),
      path.new('/a') == path.new('a'), path.new('a') < path.new('b'))
print('type:', getmetatable(p), type(tostring(p)))
local ok, e = pcall(path.new, 'a\0b')
print('NUL:', ok, tostring(e), e.arg)
ok, e = pcall(path.new, 42)
print('number:', ok, tostring(e), e.arg)
ok, e = pcall(function() p.filename = 'x' end)
print('immutable:', ok, tostring(e))
ok, e = pcall(function() return path.new('a') / {} end)
print('join table:', ok, tostring(e))
print('from_generic:', q(path.from_generic('a/b')), q(path.from_system('c')))
