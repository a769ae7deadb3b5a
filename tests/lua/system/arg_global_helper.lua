-- imported modules get no `arg`
seen = tostring(arg)
