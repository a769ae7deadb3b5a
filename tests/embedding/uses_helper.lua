-- An entry file whose directory is its import root.
local helper = require '/workers/helper'
local inbox = require 'inbox'
local m = inbox:receive()
m.reply:send(helper.twice(m.n))
