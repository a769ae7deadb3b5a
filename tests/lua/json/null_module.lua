-- a module of the json tests: exports its own copy's json.null
module = require 'json'
null = module.null
decoded = module.decode('[null]')[1]
