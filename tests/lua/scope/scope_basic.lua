-- scope runs its handlers in reverse order when f ends; returns nothing
print(select('#', scope(function()
  scope_cleanup_push(function() print('handler 1') end)
  scope_cleanup_push(function() print('handler 2') end)
  print('body')
  return 'ignored'
end)))
print('after scope')
