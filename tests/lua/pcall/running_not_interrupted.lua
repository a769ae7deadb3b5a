-- once the protected function runs, pcall never raises interrupted itself
local f
f = spawn(function()
  print(pcall(function()
    f:interrupt()
    return 'finished normally'
  end))
  print('still running')
  xpcall(function() print('not run') end, print) -- the flag is raised here
  print('not reached')
end)
f:join()
print('caught:', f.interruption_caught)
