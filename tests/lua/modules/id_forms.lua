-- project-relative ids: './x' from the root, '/a/b' from the import root,
-- packages (init.lua) and leaves
local h = require './helper_mod'
print(h.value)
local s = require '/fixtures/simple'
print(s.value, s.get())
local pkg = require '/fixtures/pkg'
print(pkg.name)
require '/fixtures/leaf'
