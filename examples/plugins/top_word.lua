-- A well-behaved plugin: replies with the input's most frequent word
-- (the request's `top` says how many to name).
local file = require 'file'
local m = require('inbox'):receive()
local input = file.stream.new(m.input)
local buf = byte_span.new(64 * 1024)
local text = tostring(buf:slice(1, input:read_some(buf)))
local count = {}
for w in text:gmatch('%a+') do count[w] = (count[w] or 0) + 1 end
local words = {}
for w in pairs(count) do words[#words + 1] = w end
table.sort(words, function(a, b)
  if count[a] ~= count[b] then return count[a] > count[b] end
  return a < b
end)
local top = {}
for i = 1, math.min(m.top, #words) do top[i] = words[i] .. ' x' .. count[words[i]] end
m.reply:send{ result = table.concat(top, ', ') }
