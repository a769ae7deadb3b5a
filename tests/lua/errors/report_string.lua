-- panic report message: a string error is printed as is
spawn(function() error('plain string', 0) end)
