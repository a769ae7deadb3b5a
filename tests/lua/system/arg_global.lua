-- args: x y
-- the entry script also gets `arg` like the standalone interpreter
print(arg[-1], arg[0], arg[1], arg[2], #arg)
local m = require './arg_global_helper'
print(m.seen)
