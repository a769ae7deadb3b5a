#!/bin/bash
# A/B of the in-process spawn (docs/performance.md "arenas"): alternates two
# luring binaries on benches/lua/actors_spawn.lua 1000 and ... 1, N times
# (default 7), and prints per binary the medians of wall and CPU per spawn
# and RSS per idle actor ((peak1000 - peak1) / 999, by /usr/bin/time).
# usage: benches/spawn_ab.sh A B [N]  (A, B: paths to luring binaries)
A=$1; B=$2; N=${3:-7}; OUT=$(mktemp)
cd "$(dirname "$0")/.."
for i in $(seq $N); do for b in $A $B; do
  r=$(/usr/bin/time -f '%M' $b benches/lua/actors_spawn.lua 1000 2>&1 | tr '\n' ' ')
  o=$(/usr/bin/time -f '%M' $b benches/lua/actors_spawn.lua 1 2>&1 | tail -1)
  echo "$b $r $o" >> $OUT
done; done
python3 - "$OUT" <<'PY'
import sys, statistics as st
d={}
for l in open(sys.argv[1]):
    f=l.split(); d.setdefault(f[0],[]).append((float(f[2])/1000, float(f[4])/1000, (float(f[5])-float(f[6]))/999))
for k,v in d.items():
    print(k, 'wall %.1f  cpu %.1f  rss/actor %.2f kB' % tuple(st.median(x[i] for x in v) for i in range(3)), ' walls', sorted(round(x[0]) for x in v))
PY
rm -f "$OUT"
