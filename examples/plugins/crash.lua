-- Misbehaves: a bug (indexing a missing field) raises an error.
local m = require('inbox'):receive()
m.reply:send{ result = m.options.verbose and 'verbose' or 'quiet' }
