#!/usr/bin/env bash
# Is W2's durable tail the two shared cores' scheduling? W2 (1,000 users,
# 2,000 msg/s, 12 s), durable and ephemeral, against PostgreSQL on this
# machine's disk and on tmpfs (fresh clusters by deploy/pgctl, fsync and
# synchronous_commit on), with fanoutd and PostgreSQL at the default
# priority and at nice -10 above the load generator; during each run
# wake.py times how late a 1 ms sleep wakes (at nice 0, beside the load
# generator). From the repository root:
#   run.sh ROUNDS OUTDIR
set -uo pipefail
rounds=$1 out=$2 here=$(dirname "$0")
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
declare -A dir=([disk]=var/cpu-waits-disk [tmpfs]=/dev/shm/fanout-cpu-waits)
declare -A port=([disk]=55443 [tmpfs]=55444)
stop_pgs() { for w in disk tmpfs; do deploy/pgctl stop "${dir[$w]}" 2>/dev/null; done; }
trap 'stop_pgs; rm -rf "${dir[tmpfs]}"' EXIT

start_pg() { # where nice: the postmaster at that nice, so its backends too
    deploy/pgctl stop "${dir[$1]}" >/dev/null 2>&1
    deploy/pgctl start "${dir[$1]}" "${port[$1]}" >/dev/null || exit 1
    renice -n "$2" -p "$(head -1 "$(deploy/pgctl datadir "${dir[$1]}")/postmaster.pid")" >/dev/null
    # the checkpointer, WAL writer and the other workers started already
    for p in $(pgrep -P "$(head -1 "$(deploy/pgctl datadir "${dir[$1]}")/postmaster.pid")"); do
        renice -n "$2" -p "$p" >/dev/null
    done
}
start_fanoutd() { # where nice: sets fpid
    printf '[server]\nport = 18090\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=%s dbname=fanout user=fanout\n[log]\nlevel = warn\n' \
        "${port[$1]}" >"$out/fanout-$1.ini"
    nice -n "$2" build/apps/fanoutd -c "$out/fanout-$1.ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
}

run() { # round where nice mode
    local r=$1 where=$2 nice=$3 mode=$4 extra=() t wpid bpid
    [ "$mode" = ephemeral ] && extra=(--ephemeral)
    t=$out/$r-$where-$nice-$mode
    start_fanoutd "$where" "$nice"
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
        "${extra[@]}" --json "$t.json" >"$t.txt" 2>&1 &
    bpid=$!
    sleep 3
    python3 "$here/wake.py" 8 >"$t.wake" &
    wpid=$!
    wait "$bpid"
    wait "$wpid"
    kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 2
    python3 - "$t.json" "$t.wake" "$r" "$where" "$nice" "$mode" <<'PY'
import json, sys
j, wake, r, where, nice, mode = sys.argv[1:]
d = json.load(open(j))["latency_ms"]
w = open(wake).read().split()
print(r, where, nice, mode, "%.2f" % d["p50"], "%.2f" % d["p99"], "%.2f" % d["p999"],
      w[w.index("p99") + 1], w[w.index("p999") + 1], w[w.index("max") + 1])
PY
}

python3 "$here/wake.py" 8 >"$out/idle.wake"
echo "round pg nice mode p50_ms p99_ms p999_ms wake_late_p99 wake_late_p999 wake_late_max" >"$out/table.txt"
for r in $(seq "$rounds"); do
    for where in disk tmpfs; do
        for nice in 0 -10; do
            start_pg "$where" "$nice"
            for mode in durable ephemeral; do run "$r" "$where" "$nice" "$mode" >>"$out/table.txt"; done
            deploy/pgctl stop "${dir[$where]}" >/dev/null
        done
    done
done
cat "$out/idle.wake"
column -t "$out/table.txt"
