name = 'pkg'
