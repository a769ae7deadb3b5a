-- stream (spec/io.md "stream"): composed ops over any object with
-- read_some/write_some (pipes, files, sockets) and the line scanner.
-- Nothing here touches the ring itself: every wait is the object's own
-- read_some/write_some, so interruption and close() behave as theirs do.
--
-- Invariants of the scanner: its buffer holds the bytes read but not yet
-- consumed; a record is consumed only when get_line returns it (or
-- remove_line is called), so an interrupted get_line loses nothing:
-- whatever its reads delivered stays buffered for the next call.
local K, P, IO = ...
local E = K.rt.errno
local raise_errno, is_byte_span = K.raise_errno, K.is_byte_span
local type, error, tostring = type, error, tostring
local sfind, ssub, smatch, sgmatch = string.find, string.sub, string.match, string.gmatch

local stream = {}

local function count_arg(n, len, arg)
  if type(n) ~= 'number' or n < 0 or n % 1 ~= 0 or n > len then raise_errno(E.EINVAL, arg) end
  return n
end

local function check_stream(s, method, arg)
  local ok, m = pcall(function() return s[method] end)
  if not ok or m == nil then raise_errno(E.EINVAL, arg or 1) end
end

local function write_at_least(s, buf, n)
  check_stream(s, 'write_some')
  if type(buf) == 'string' then buf = byte_span.append(buf)
  elseif not is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
  n = count_arg(n, #buf, 3)
  local done = 0
  while done < n do
    done = done + s:write_some(buf:slice(done + 1))
  end
  return done
end

local function read_at_least(s, buf, n)
  check_stream(s, 'read_some')
  if not is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
  n = count_arg(n, #buf, 3)
  local done = 0
  while done < n do
    done = done + s:read_some(buf:slice(done + 1))
  end
  return done
end

function stream.write_all(s, buf)
  if type(buf) == 'string' then return write_at_least(s, buf, #buf) end
  if not is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
  return write_at_least(s, buf, #buf)
end
stream.write_at_least = write_at_least
function stream.read_all(s, buf)
  if not is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
  return read_at_least(s, buf, #buf)
end
stream.read_at_least = read_at_least

---------------------------------------------------------------------------
-- scanner
local DEFAULT_MAX_RECORD = 65536
local DEFAULT_HINT = 4096

local scanners = setmetatable({}, { __mode = 'k' })
local methods, props = {}, {}
local scanner_mt = K.class('stream.scanner', methods, props)

local function state(self)
  local st = scanners[self]
  if not st then raise_errno(E.EINVAL, 1) end
  return st
end

local function positive_int(v, default)
  if v == nil then return default end
  if type(v) ~= 'number' or v < 1 or v % 1 ~= 0 then return nil end
  return v
end

local function new_scanner(opts)
  if type(opts) ~= 'table' then raise_errno(E.EINVAL, 1) end
  local s = opts.stream
  if s == nil then raise_errno(E.EINVAL, 'stream') end
  check_stream(s, 'read_some', 'stream')
  local st = {
    stream = s, buf = '', record_end = nil, record = nil,
    rs = opts.record_separator == nil and '\n' or opts.record_separator,
    fs = opts.field_separator, fpat = opts.field_pattern,
    trim = opts.trim_record and true or false,
    max = positive_int(opts.max_record_size, DEFAULT_MAX_RECORD),
    hint = positive_int(opts.buffer_size_hint, DEFAULT_HINT),
  }
  if type(st.rs) ~= 'string' or st.rs == '' then raise_errno(E.EINVAL, 'record_separator') end
  if st.fs ~= nil and type(st.fs) ~= 'string' then raise_errno(E.EINVAL, 'field_separator') end
  if st.fpat ~= nil and type(st.fpat) ~= 'string' then raise_errno(E.EINVAL, 'field_pattern') end
  if st.fs and st.fpat then raise_errno(E.EINVAL, 'field_pattern') end
  if not st.max then raise_errno(E.EINVAL, 'max_record_size') end
  if not st.hint then raise_errno(E.EINVAL, 'buffer_size_hint') end
  local obj = setmetatable({}, scanner_mt)
  scanners[obj] = st
  return obj
end

stream.scanner = {
  new = new_scanner,
  -- awk's defaults: newline-separated records, fields split on runs of
  -- blanks with leading and trailing blanks ignored.
  with_awk_defaults = function(s)
    return new_scanner{ stream = s, record_separator = '\n', field_separator = ' ',
                        trim_record = false }
  end,
}

-- Looks for a complete record in the buffer; remembers where it ends.
local function find_record(st)
  if st.record_end then return true end
  local i, j = sfind(st.buf, st.rs, 1, true)
  if not i then return false end
  st.record, st.record_end = ssub(st.buf, 1, i - 1), j
  return true
end

local function fields_of(st, record)
  local fields = {}
  if st.fpat then
    for f in sgmatch(record, st.fpat) do fields[#fields + 1] = f end
  elseif st.fs == ' ' then
    for f in sgmatch(record, '[^ \t\n]+') do fields[#fields + 1] = f end
  else
    local pos = 1
    while true do
      local i, j = sfind(record, st.fs, pos, true)
      if not i then fields[#fields + 1] = ssub(record, pos) break end
      fields[#fields + 1] = ssub(record, pos, i - 1)
      pos = j + 1
    end
  end
  return fields
end

local function finish(st, record)
  if st.trim then record = smatch(record, '^%s*(.-)%s*$') end
  if st.fs or st.fpat then return record, fields_of(st, record) end
  return record
end

-- get_line() -> record[, fields] [S]: reads until a whole record is
-- buffered, consumes and returns it (the separator removed). At the end of
-- the stream, what remains is the last record; then eof is raised. A
-- record longer than max_record_size is EMSGSIZE (the buffer is kept).
function methods.get_line(self)
  local st = state(self)
  while not find_record(st) do
    if #st.buf > st.max then raise_errno(E.EMSGSIZE) end
    local chunk = byte_span.new(st.hint)
    local ok, n = pcall(st.stream.read_some, st.stream, chunk)
    if not ok then
      local e = n
      if type(e) == 'table' and e == IO.eof() and st.buf ~= '' then
        st.record, st.record_end = st.buf, #st.buf
        break
      end
      error(e, 0)
    end
    st.buf = st.buf .. tostring(chunk:slice(1, n))
  end
  if #st.record > st.max then raise_errno(E.EMSGSIZE) end
  local record = st.record
  st.buf = ssub(st.buf, st.record_end + 1)
  st.record, st.record_end = nil, nil
  return finish(st, record)
end

-- buffered_line() -> record[, fields] or nil [B]: the record already in
-- the buffer, left there.
function methods.buffered_line(self)
  local st = state(self)
  if not find_record(st) then return nil end
  return finish(st, st.record)
end

-- remove_line() [B]: consumes the buffered record (EINVAL when none).
function methods.remove_line(self)
  local st = state(self)
  if not find_record(st) then raise_errno(E.EINVAL) end
  st.buf = ssub(st.buf, st.record_end + 1)
  st.record, st.record_end = nil, nil
end

-- buffer() -> string [B]: the bytes read and not consumed.
function methods.buffer(self) return state(self).buf end

-- set_buffer(string) [B]: replaces them (after reading a body directly).
function methods.set_buffer(self, s)
  local st = state(self)
  if is_byte_span(s) then s = tostring(s) end
  if type(s) ~= 'string' then raise_errno(E.EINVAL, 2) end
  st.buf, st.record, st.record_end = s, nil, nil
end

props.stream = function(self) return state(self).stream end

return stream
