-- Imported by ../uses_helper.lua: a module exports its globals.
function twice(x) return 2 * x end
