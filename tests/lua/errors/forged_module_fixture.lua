error(setmetatable({}, {
  __metatable = 'error_code',
  __index = function() error('index ran', 0) end,
  __eq = function() error('eq ran', 0) end,
}), 0)
