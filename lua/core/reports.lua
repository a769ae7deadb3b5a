-- Panic reports: the text and traceback of a failed fiber's report
-- (lua/core/scheduler.lua `write_panic` loads this with its first report,
-- through `K.load_lazy_chunk`, and calls the function it returns).
-- Runs with the runtime's globals as its env; calls no user code.
local K, raw_pcall, raw_gsub, stderr_write, emergency_gc = ...
local type = type

-- Panic tracebacks follow spec/core.md §8: the runtime's own frames are
-- hidden. Leading runtime/C frames (the raise machinery) are dropped, except
-- that a builtin which reports its errors through an async-op style wrapper
-- keeps one `[string "?"]: in function '<name>'` frame; runtime frames
-- between user frames are shown without line information; the frames below
-- the outermost user frame are the start wrapper's two fixed frames.
local wrapped_builtins = {
  join = true, send = true, receive = true, require = true, sleep = true,
  wait = true, get = true, scope = true, resume = true, read_some = true,
  write_some = true,
}
local RT_FRAME = '\t[string "?"]: in function <[string "?"]:0>'

local function frame_kind(l)
  -- runtime chunks are named '?<file>' (shown as [string "?<file>"]) or
  -- '=?<file>' (shown as ?<file>)
  if l:find('^\t%[string "%?') or l:find('^\t%?') then return 'rt' end
  if l:find('^\t%[C%]') or l:find('^\t%(tail call%)') then return 'c' end
  return 'user'
end

local function format_traceback(tb)
  if not tb then return 'stack traceback:\n' .. "\t[C]: in function ''\n" .. RT_FRAME end
  local lines = {}
  for l in tb:gmatch('[^\n]+') do lines[#lines + 1] = l end
  local first, last
  for i = 2, #lines do
    if frame_kind(lines[i]) == 'user' then
      first = first or i
      last = i
    end
  end
  local out = { 'stack traceback:' }
  if first then
    local prev = lines[first - 1]
    if first > 2 and frame_kind(prev) == 'rt' then
      local name = prev:match("in function '([^']+)'")
      if name and wrapped_builtins[name] then
        out[#out + 1] = '\t[string "?"]: in function \'' .. name .. "'"
      end
    end
    for i = first, last do
      local l = lines[i]
      local k = frame_kind(l)
      if k == 'rt' then
        local name = l:match("in function '([^']+)'")
        l = name and ('\t[string "?"]: in function \'' .. name .. "'") or RT_FRAME
      elseif k == 'c' then
        l = raw_gsub(l, "'raw_", "'")
      end
      out[#out + 1] = l
    end
  end
  out[#out + 1] = "\t[C]: in function ''"
  out[#out + 1] = RT_FRAME
  return table.concat(out, '\n')
end

-- Reports never raise, whatever the error value: error_message reads it
-- with raw accesses only, and the text is built under protection (e.g. out
-- of memory for a huge message), with a fixed fallback.
local function panic_text(f)
  return K.error_message(f.err) .. "'\n" .. format_traceback(f.traceback) .. '\n'
end
local function write_panic(head, f)
  local ok, text = raw_pcall(panic_text, f)
  if not ok then
    -- Out of memory, most likely (a fiber that died of it, a caught
    -- memory bomb): what it held may be garbage by now.
    emergency_gc()
    ok, text = raw_pcall(panic_text, f)
  end
  if ok and raw_pcall(stderr_write, head .. text) then return end
  -- Still no room for the text: its parts, each written as it is (no new
  -- string), so the report still names the error.
  raw_pcall(stderr_write, head)
  local e = f.err
  if type(e) == 'string' then raw_pcall(stderr_write, e) end
  raw_pcall(stderr_write, "'\n")
  local tb_ok, traceback = raw_pcall(format_traceback, f.traceback)
  if tb_ok then raw_pcall(stderr_write, traceback) end
  raw_pcall(stderr_write, '\n')
end

return write_panic
