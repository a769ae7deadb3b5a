-- _FILE is a filesystem.path before `filesystem` is required: its first
-- use (here an operator, not a method) loads the class
print(getmetatable(_FILE), tostring(_FILE):match('[^/]+/[^/]+$'))
local sibling = _FILE.parent_path / 'other.lua'
print(tostring(sibling):match('[^/]+/[^/]+$'))
print(tostring(_FILE .. '.bak'):match('[^/]+$'), _FILE == _FILE, _FILE.stem)
print(pcall(function() _FILE.x = 1 end))
local fs = require 'filesystem'
print(fs.exists(_FILE), fs.is_regular_file(_FILE), _FILE == fs.path.new(tostring(_FILE)))
