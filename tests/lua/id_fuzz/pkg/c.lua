name = 'c'
