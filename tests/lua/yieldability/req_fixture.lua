value = 'module loaded'
