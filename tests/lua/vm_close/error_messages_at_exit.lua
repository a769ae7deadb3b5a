-- Fibers that failed with the runtime's own errors (their messages come
-- from Rust, rt.error_text) and whose handles are collected only while
-- the VM closes: their panic reports still show each message.
local json = require 'json'
keep = {
  spawn(function() this_fiber.allow_suspend() end),
  spawn(function() json.decode('[') end),
  spawn(function() json.decode(json.encode({ 1, { 2 } }) .. 'x') end),
}
this_fiber.yield()
print('main done')
