-- A well-behaved plugin: counts the words and lines of the input it is
-- handed (a read-only file descriptor) and replies.
local file = require 'file'
local m = require('inbox'):receive()
local input = file.stream.new(m.input)
local buf = byte_span.new(64 * 1024)
local text = tostring(buf:slice(1, input:read_some(buf)))
local words, lines = 0, 0
for _ in text:gmatch('%S+') do words = words + 1 end
for _ in text:gmatch('\n') do lines = lines + 1 end
m.reply:send{ result = ('%d words, %d lines'):format(words, lines) }
