-- an imported module sees and can set its importer's fiber locals
this_fiber.local_.from_importer = 'hello'
require '/fixtures/local_mod'
print('importer sees', this_fiber.local_.from_module)
