-- exit: 1
-- A fiber that prints more than the 64 KiB print buffer without ever
-- blocking: everything arrives, in order, before the report on stderr.
for i = 1, 3000 do print(string.rep('x', 40) .. i) end
error('done printing', 0)
