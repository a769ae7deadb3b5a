-- out/err write_some interleave with print: stdout is flushed first
local system = require 'system'
print('print 1')
print(system.out:write_some('out 1\n'))
print('print 2')
print(system.err:write_some('err 1\n'))
print('print 3')
system.err:write_some(byte_span.append('err 2 (byte_span)\n'))
print('print 4')
