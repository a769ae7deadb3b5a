-- system.environment is a table of the process environment
local system = require 'system'
local env = system.environment
print(type(env))
print(type(env.PATH), env.PATH == os.getenv('PATH'))
print(env.LURING_LOG)   -- removed by the test harness
