-- the main fiber's root handlers run when it finishes successfully
scope_cleanup_push(function() print('main root handler') end)
print('main body end')
