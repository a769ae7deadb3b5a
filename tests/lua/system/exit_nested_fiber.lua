-- exit: 7
-- exit from a nested fiber ends the whole VM
local system = require 'system'
local time = require 'time'
spawn(function()
  spawn(function()
    print('inner fiber exits')
    system.exit(7)
  end):join()
  print('not reached')
end)
time.sleep(60)
print('not reached either')
