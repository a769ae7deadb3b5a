#!/usr/bin/env python3
# Self cost per function of a callgrind dump, per echoed message
# (docs/performance.md "echolua"): callgrind_annotate 3.19 put every
# instruction of count.sh's dumps under `clone`. Run count.sh with
# VALGRIND_OPTS=--compress-strings=no so that each dump names its
# functions itself.
# usage: by_function.py DUMP [MESSAGES (default 20000)] [TOP (default 40)]
# Prints the total, the coroutine resumes (fiber switches) per message, a
# split (luring's Rust, mlua, LuaJIT's C, compiled traces: functions named
# by address), then the TOP dearest functions.
import collections
import sys

path = sys.argv[1]
messages = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
by_fn = collections.Counter()
fn = ''
cfn = ''
after_calls = False
resumes = 0
for line in open(path, errors='replace'):
    line = line.rstrip('\n')
    if not line:
        continue
    if line.startswith('fn='):
        fn = line[3:]
        continue
    if line.startswith('cfn='):
        cfn = line[4:]
        continue
    if line.startswith('calls='):
        after_calls = True  # the next cost line is the call's inclusive cost
        if cfn.startswith('lj_ff_coroutine_resume'):
            resumes += int(line[6:].split()[0])
        continue
    if line[0].isdigit() or line[0] in '+-*':
        if after_calls:
            after_calls = False
            continue
        parts = line.split()
        try:
            by_fn[fn] += int(parts[1])
        except (IndexError, ValueError):
            pass


def part(name):
    if 'luring::' in name:
        return 'luring'
    if 'mlua' in name:
        return 'mlua'
    if name.startswith('0x'):
        return 'traces'
    if name.startswith(('lj_', 'lua_', 'luaL_')):
        return 'luajit'
    return 'other'


total = sum(by_fn.values())
parts = collections.Counter()
for name, cost in by_fn.items():
    parts[part(name)] += cost
print('total %.0f per message' % (total / messages))
# Fiber switches per message: the total moves with them (docs/performance.md
# "echocut": runs fall into ~1.25 and ~1.7), so compare runs at like values.
print('  resumes %.3f per message' % (resumes / messages))
print('  ' + '  '.join('%s %.0f' % (k, v / messages) for k, v in sorted(parts.items())))
for name, cost in by_fn.most_common(top):
    print('%9.1f  %s' % (cost / messages, name))
