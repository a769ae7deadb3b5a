#!/bin/bash
# Who wakes whom in the echo bench (docs/performance.md "echopin"): runs
# one 6 s bench of SERVER, and over 3 s in the middle counts, with
# `perf stat` tracepoints, on the server process and on the load
# generator's thread: ring submissions, task-work runs, system calls and
# rescheduling IPIs taken. Prints one line, per echoed message (the load
# generator submits one send and one recv per message): loadRES = IPIs
# into the load generator (the server's sends kicking its ring's task
# work), loadTW = its task-work runs, loadSC / srvSC = system calls (ring
# turns) of each side, srvRES = IPIs into the server.
# usage: benches/echo_wake/wake.sh BENCH_BINARY SERVER [VAR=VALUE...]
#   BENCH_BINARY: target/release/deps/echo-<hash> (`cargo bench --bench echo --no-run`)
#   SERVER: luring, tokio, uring or luring-ref (with LURING_BENCH_REF_BIN=... among the VARs)
set -e
BENCH=$1; SRV=$2; shift 2
cd "$(dirname "$0")/../.."
OUT=$(mktemp); P=$(mktemp)
env "$@" LURING_BENCH_RUNS=1 LURING_BENCH_SYSCALL_COUNTER=none LURING_BENCH_SECS=6 "$BENCH" "$SRV" >"$OUT" 2>&1 &
BP=$!
sleep 2.5
SP=$(pgrep -P $BP | head -1)
EV=io_uring:io_uring_submit_req,io_uring:io_uring_task_work_run,raw_syscalls:sys_enter,irq_vectors:reschedule_entry
perf stat -x, -e $EV -p "$SP" -o "$P.s" -- sleep 3 &
perf stat -x, -e $EV -t "$BP" -o "$P.l" -- sleep 3 &
wait %2 %3
wait $BP
python3 - "$OUT" "$P.s" "$P.l" <<'PY'
import re, sys
line = [l for l in open(sys.argv[1]) if l.startswith("run 1/1")][0]
run = line.split()
cpu = re.search(r" CPU ([\d.]+) us/msg", line).group(1)
def counts(path):
    d = {}
    for l in open(path):
        f = l.strip().split(",")
        if len(f) > 2 and f[0].isdigit():
            d[f[2].split(":")[1]] = int(f[0])
    return d
s, l = counts(sys.argv[2]), counts(sys.argv[3])
msgs = l["io_uring_submit_req"] / 2
g = lambda d, k: d.get(k, 0) / msgs
print("%-10s %8s msgs/s  CPU %s us/msg  loadRES %.4f loadTW %.4f loadSC %.4f srvSC %.4f srvRES %.4f"
      % (run[2], run[3], cpu, g(l, "reschedule_entry"), g(l, "io_uring_task_work_run"),
         g(l, "sys_enter"), g(s, "sys_enter"), g(s, "reschedule_entry")))
PY
rm -f "$OUT" "$P" "$P.s" "$P.l"
