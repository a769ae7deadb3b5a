-- load refuses binary chunks with a clear error, whatever form they come in;
-- text chunks work. string.dump does not exist, so the chunks are forged:
-- a LuaJIT bytecode header followed by garbage (loading it would crash).
local dumped = '\27LJ\2\10\0\255\255\255\255\255\255\255\255\1\0\0'
print(load(dumped))
print(loadstring(dumped))
print(load(dumped, 'x', 't'))
print(load(dumped, 'x', 'bt'))
print(load(dumped, 'x', 't', {}))
-- a reader: whole chunk in one piece, the signature split over pieces;
-- an empty first piece ends the chunk (Lua's reader rule): an empty function
local function reader(pieces)
  local i = 0
  return function() i = i + 1 return pieces[i] end
end
print(load(reader({ dumped })))
print(load(reader({ '\27', 'LJ\2\10', '\0\0' })))
print(type(load(reader({ '', '\27LJ', '\2' }))))
print(load('return 1', 'x', 'b'))
print(load('return 1', 'x', 'bt'))
local f = assert(load('return 1 + ...'))
print(f(41))
local g = assert(loadstring('x_global = 5'))
g()
print(x_global)
print(load('syntax error here'))
print(load(reader({ 'return ', '7' }))())
print(load('return y', 'chunk', 't', { y = 'own env' })())
print(string.dump, ('x').dump)
