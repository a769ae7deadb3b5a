-- strings and booleans: alignment, fill, precision, debug form
-- the test harness renumbers 0x... ids, so a 0x prefix is shown as 0_x
local function hexsafe(s) return (s:gsub('0x', '0_x')) end
print(format('[{:10}]', 'left'))
print(format('[{:<10}]', 'left'))
print(format('[{:>10}]', 'right'))
print(format('[{:^10}]', 'mid'))
print(format('[{:^9}]', 'mid'))
print(format('[{:*^9}]', 'mid'))
print(format('[{:-<6}]', 'ab'))
print(format('[{:☺>6}]', 'ab'))
print(format('[{:>6}]', 'héllo'))     -- width counts characters
print(format('[{:.3}]', 'héllo'))     -- precision truncates characters
print(format('[{:>8.2}]', 'héllo'))
print(format('[{:.0}]', 'gone'))
print(format('[{:3}]', 'longer than width'))
print(format('[{:s}]', 'typed'))
print(format('{:?}', 'quote " backslash \\ tab \t nl \n nul \0 bell \7 é'))
print(format('{:?}', 'bad \255 byte'))
print(format('[{:>8?}]', 'x'))
print(format('{} {}', true, false))
print(format('[{:>6}] [{:<7}] [{:^7s}]', true, false, true))
print(hexsafe(format('{:d} {:d} {:#x} {:05b}', true, false, true, true)))
