-- imported by ./helper_mod from cases in this directory (not a case)
print('helper_mod evaluated; _CONTEXT =', string.format('%q', _CONTEXT))
value = 'helper'
