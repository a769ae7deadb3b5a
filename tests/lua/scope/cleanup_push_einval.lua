-- scope_cleanup_push requires a function
local ok, e = pcall(scope_cleanup_push, 'x')
print(ok, tostring(e.category), tostring(e), e == require('generic_error').EINVAL)
