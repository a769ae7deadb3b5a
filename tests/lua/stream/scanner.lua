-- stream.scanner: records, fields, options, buffer access, end of stream,
-- limits, interruption
local stream = require 'stream'
local pipe = require 'pipe'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local function fields(t) return t and ('[' .. table.concat(t, '|') .. ']') or 'nil' end
-- A pipe carrying `text`, then EOF (written by another fiber).
local function feed(text, chunk)
  local r, w = pipe.pair()
  spawn(function()
    chunk = chunk or #text
    for i = 1, #text, chunk do w:write_some(text:sub(i, i + chunk - 1)) this_fiber.yield() end
    w:close()
  end)
  return r
end

-- default: '\n' records; records split across reads of one byte
local sc = stream.scanner.new{ stream = feed('one\ntwo\n\nlast', 3), buffer_size_hint = 1 }
print(getmetatable(sc))
for _ = 1, 4 do print('line:', '[' .. sc:get_line() .. ']') end
print('after the last:', try(sc.get_line, sc))
print('still eof:', try(sc.get_line, sc))

-- custom separator, trim_record
sc = stream.scanner.new{ stream = feed('  GET / HTTP/1.1 \r\nHost: x\r\n\r\n'), record_separator = '\r\n',
                         trim_record = true }
print('crlf:', '[' .. sc:get_line() .. ']', '[' .. sc:get_line() .. ']', '[' .. sc:get_line() .. ']')

-- fields: a plain separator, awk defaults, a field pattern
sc = stream.scanner.new{ stream = feed('a,b,,c\n'), field_separator = ',' }
local rec, f = sc:get_line()
print('field_separator:', rec, fields(f))
sc = stream.scanner.with_awk_defaults(feed('  alpha  beta\tgamma  \n\n'))
rec, f = sc:get_line()
print('awk:', '[' .. rec .. ']', fields(f), #f)
rec, f = sc:get_line()
print('awk empty record:', '[' .. rec .. ']', fields(f), #f)
sc = stream.scanner.new{ stream = feed('x=1 y=22 z=333\n'), field_pattern = '%a=%d+' }
rec, f = sc:get_line()
print('field_pattern:', fields(f))

-- buffered_line / remove_line / buffer / set_buffer
local r, w = pipe.pair()
sc = stream.scanner.new{ stream = r }
print('nothing buffered:', sc:buffered_line(), '[' .. sc:buffer() .. ']', try(sc.remove_line, sc))
w:write_some('first\nsecond\npartial')
print('get_line:', sc:get_line())
print('buffered_line:', sc:buffered_line(), sc:buffered_line())
sc:remove_line()
print('buffer:', '[' .. sc:buffer() .. ']', sc:buffered_line())
sc:set_buffer('replaced\nx')
print('after set_buffer:', sc:get_line(), '[' .. sc:buffer() .. ']')
sc:set_buffer(byte_span.append('span\n'))
print('span buffer:', sc:get_line(), sc.stream == r)

-- interrupted get_line loses nothing
local f2 = spawn(function() return sc:get_line() end)
w:write_some('abc')
this_fiber.yield()
this_fiber.yield()
f2:interrupt()
f2:join()
w:write_some('def\n')
print('after interruption:', sc:get_line())

-- max_record_size
sc = stream.scanner.new{ stream = feed(string.rep('x', 100) .. '\nok\n'), max_record_size = 10, buffer_size_hint = 16 }
print('too long:', try(sc.get_line, sc))

print('-- errors')
print('no table:', try(stream.scanner.new))
print('no stream:', try(stream.scanner.new, {}))
print('not a stream:', try(stream.scanner.new, { stream = 42 }))
print('empty separator:', try(stream.scanner.new, { stream = r, record_separator = '' }))
print('separator number:', try(stream.scanner.new, { stream = r, record_separator = 1 }))
print('both field options:', try(stream.scanner.new, { stream = r, field_separator = ',', field_pattern = '.' }))
print('bad max:', try(stream.scanner.new, { stream = r, max_record_size = 0 }))
print('bad hint:', try(stream.scanner.new, { stream = r, buffer_size_hint = 1.5 }))
print('set_buffer number:', try(sc.set_buffer, sc, 1))
print('forged self:', try(sc.get_line, {}))
print('closed stream:', try(function() r:close() local s = stream.scanner.new{ stream = r } return s:get_line() end))
