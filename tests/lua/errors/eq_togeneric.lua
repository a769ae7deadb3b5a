-- __eq compares code and category only; togeneric maps system -> generic
local ge = require 'generic_error'
local time = require 'time'
local t = time.steady_timer.new()
t:expires_after(60)
local f = spawn(function() local _, e = pcall(t.wait, t) return e end)
this_fiber.yield()
t:cancel()
local aborted = f:join()       -- operation_aborted: system category ECANCELED
print(tostring(aborted.category), aborted == ge.ECANCELED)
local g = aborted:togeneric()
print(tostring(g.category), g == ge.ECANCELED, tostring(g))
-- already generic: unchanged
print(ge.EEXIST:togeneric() == ge.EEXIST)
local _, einval = pcall(time.sleep, 'x')
print(einval == ge.EINVAL, einval ~= ge.EEXIST, einval.arg, ge.EINVAL.arg)
print(ge.EEXIST == ge.EEXIST, ge.EEXIST ~= ge.EPERM, tostring(ge.EEXIST))
-- an error table is not equal to a plain table with the same fields
print(ge.EEXIST == { code = ge.EEXIST.code, category = ge.EEXIST.category })
