#!/bin/bash
# User-space instructions per echoed message of examples/echo_server.lua
# (docs/performance.md "echo-ffi"): runs LURING under callgrind, sends WARM
# messages (client.py), zeroes the counters (callgrind_control -d), sends N
# more, dumps again and prints that dump's total / N. State-independent:
# only the batch sizes (messages per ring turn) vary a little run to run.
# usage: benches/echo_count/count.sh LURING OUT_PREFIX [WARM] [N]
set -e
BIN=$1; OUT=$2; WARM=${3:-1000}; N=${4:-20000}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
LOG=$(mktemp); VGLOG=$(mktemp)
valgrind --tool=callgrind --callgrind-out-file="$OUT.%p" "$BIN" examples/echo_server.lua 0 >"$LOG" 2>"$VGLOG" &
VPID=$!
for _ in $(seq 1 600); do grep -q listening "$LOG" && break; sleep 0.1; done
PORT=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$LOG")
python3 "$HERE/client.py" "$PORT" "$WARM"
sleep 0.5
callgrind_control -d warm "$VPID" >/dev/null
python3 "$HERE/client.py" "$PORT" "$N"
sleep 0.5
callgrind_control -d measured "$VPID" >/dev/null
sleep 0.5
kill -KILL "$VPID"; wait "$VPID" 2>/dev/null || true
F=$(ls -t "$OUT".*.2 | head -1)
TOT=$(grep -E '^summary:' "$F" | awk '{print $2}')
echo "$F: $TOT instructions, $((TOT / N)) per message"
rm -f "$LOG" "$VGLOG"
