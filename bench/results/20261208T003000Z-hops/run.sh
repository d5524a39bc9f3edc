#!/usr/bin/env bash
# How much of W2's durable tail and CPU is hand-offs between threads? W2
# (1,000 users, 2,000 msg/s, 12 s) with one service thread: durable, and
# ephemeral with its frame and ack handed through 0, 1 and 3 relay threads
# before the broadcast (hops.patch, an experiment not on main: 1 relay is
# two wake-ups, as a writer driven from the service thread's own loop would
# cost; 3 relays are four, as the lane and its backend cost today).
# fanoutd's CPU over the run from /proc. From the repository root, with
# the patched fanoutd in build-exp and the bench PostgreSQL on 55434:
#   run.sh ROUNDS OUTDIR
set -uo pipefail
rounds=$1 out=$2
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
printf '[server]\nport = 18090\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[log]\nlevel = warn\n' >"$out/fanout.ini"
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # round mode hops
    local r=$1 mode=$2 hops=$3 extra=() t fpid c0 c1
    [ "$mode" = ephemeral ] && extra=(--ephemeral)
    t=$out/$r-$mode-$hops
    FANOUT_EXP_HOPS=$hops build-exp/apps/fanoutd -c "$out/fanout.ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
    c0=$(cpu "$fpid")
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
        "${extra[@]}" --json "$t.json" >"$t.txt" 2>&1
    c1=$(cpu "$fpid")
    kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 1
    python3 - "$t.json" "$r" "$mode" "$hops" "$c0" "$c1" "$tck" <<'PY'
import json, sys
j, r, mode, hops, c0, c1, tck = sys.argv[1:]
d = json.load(open(j))
l = d["latency_ms"]
n = d.get("deliveries") or d.get("received") or 0
cpu = (int(c1) - int(c0)) / int(tck)
print(r, mode, hops, "%.2f" % l["p50"], "%.2f" % l["p99"], "%.2f" % l["p999"], n,
      "%.2f" % cpu, "%.2f" % (cpu * 1e6 / n if n else 0))
PY
}
echo "round mode hops p50_ms p99_ms p999_ms deliveries fanoutd_cpu_s us_per_delivery" >"$out/table.txt"
for r in $(seq "$rounds"); do
    run "$r" durable 0 >>"$out/table.txt"
    for h in 0 1 3; do run "$r" ephemeral "$h" >>"$out/table.txt"; done
done
column -t "$out/table.txt"
