-- options: --memory-limit 16M
-- Runtime code a VM loads on first use (lua/core/loader.lua for project
-- modules and spawn_vm, rt functions built on first read) meets the
-- memory limit: the first project require and the first spawn_vm fail
-- with a catchable "not enough memory" and leave nothing half done; once
-- memory is freed both work.
local inbox = require 'inbox'
local hog, i = {}, 0
pcall(function() while true do i = i + 1 hog[i] = { i } end end)
local req_ok, req_err = pcall(require, './lazy_code_helper')
local spawn_ok, spawn_err = pcall(spawn_vm, './lazy_code_helper')
hog = nil
collectgarbage()
local function memory_error(e)
  return tostring(e):find('not enough memory', 1, true) ~= nil
end
print('require at the limit', req_ok, memory_error(req_err))
print('spawn_vm at the limit', spawn_ok, memory_error(spawn_err))
print('require after', require('./lazy_code_helper').greeting)
local worker = spawn_vm('./lazy_code_helper')
worker:send({ back = inbox })
print('worker', inbox:receive())
