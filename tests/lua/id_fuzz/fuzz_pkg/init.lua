local fuzz = this_fiber.local_.fuzz
this_fiber.local_.fuzz = nil
fuzz('package')
