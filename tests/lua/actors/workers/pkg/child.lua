value = 'child of pkg, context "' .. _CONTEXT .. '"'
