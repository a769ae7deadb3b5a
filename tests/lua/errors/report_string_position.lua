-- error with a level adds the position to the string message
spawn(function() error('with position') end)
