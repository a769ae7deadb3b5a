#!/usr/bin/env python3
# Exit time with N idle actors (docs/performance.md "exitgc"): runs
# benches/lua/actors_spawn.lua N with each binary in turn, ROUNDS times, and
# prints per binary the median time from the script's last line to the
# process's exit (every VM torn down).
# usage: benches/exit_ab.py N ROUNDS BINARY...
import os, statistics, subprocess, sys, time

n, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
res = {}
for _ in range(rounds):
    for b in bins:
        p = subprocess.Popen([b, 'benches/lua/actors_spawn.lua', n],
                             stdout=subprocess.PIPE, text=True, cwd=root)
        p.stdout.readline(); p.stdout.readline()
        t = time.monotonic(); p.wait()
        res.setdefault(b, []).append((time.monotonic() - t) * 1e3)
for b, v in res.items():
    print(b, 'exit ms: median %.1f' % statistics.median(v), sorted(round(x, 1) for x in v))
