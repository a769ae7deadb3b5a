-- join on a fiber that already finished returns its values
local f = spawn(function()
  print('child runs')
  return 1, nil, 'three'
end)
this_fiber.yield()
print('child done; joinable:', f.joinable)
local n = select('#', f:join())
print('values:', n)
print('joinable after join:', f.joinable)
