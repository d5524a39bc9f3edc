#!/usr/bin/env bash
# W2 and W1 100 x 200, durable beside ephemeral, with PostgreSQL's data
# (its WAL included) on this machine's disk and on tmpfs, where a flush
# costs nothing: how much of the durable tail is the disk's flush. Two
# fresh clusters made by deploy/pgctl, fsync and synchronous_commit on in
# both. From the repository root:
#   run.sh ROUNDS OUTDIR   W2 (1,000 users, 2,000 msg/s, 12 s) and W1
#                          100 x 200 (8 s), durable and ephemeral, on the
#                          disk's cluster and tmpfs's alternated ROUNDS
#                          times; fanoutd's stage histograms over each
#                          durable W2 run
set -uo pipefail
rounds=$1 out=$2
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
disk_dir=var/flush-floor-disk tmpfs_dir=/dev/shm/fanout-flush-floor
declare -A port=([disk]=55441 [tmpfs]=55442)
deploy/pgctl start "$disk_dir" "${port[disk]}" >/dev/null || exit 1
deploy/pgctl start "$tmpfs_dir" "${port[tmpfs]}" >/dev/null || exit 1
trap 'deploy/pgctl stop "$disk_dir"; deploy/pgctl stop "$tmpfs_dir"; rm -rf "$tmpfs_dir"' EXIT
echo "disk: $(deploy/pgctl datadir "$disk_dir") on $(df --output=source "$(dirname "$(deploy/pgctl datadir "$disk_dir")")" | tail -1)" >"$out/clusters.txt"
echo "tmpfs: $tmpfs_dir on $(df --output=fstype "$tmpfs_dir" | tail -1)" >>"$out/clusters.txt"

start_fanoutd() { # where: sets fpid
    printf '[server]\nport = 18090\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=%s dbname=fanout user=fanout\n[log]\nlevel = warn\n' \
        "${port[$1]}" >"$out/fanout-$1.ini"
    build/apps/fanoutd -c "$out/fanout-$1.ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
}
stop_fanoutd() { kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 2; }

stage_line() { # metrics.0 metrics.1: persist_queue and persist_commit p99 and p99.9 (ms)
    python3 - "$1" "$2" <<'PY'
import re, sys
def buckets(path):
    h = {}
    for line in open(path):
        m = re.match(r'(fanout_\w+_seconds)_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
            h.setdefault(m.group(1), []).append((le, int(m.group(3))))
    return h
a, b = buckets(sys.argv[1]), buckets(sys.argv[2])
cols = []
for name in ["fanout_persist_queue_seconds", "fanout_persist_commit_seconds"]:
    before = dict(a.get(name, []))
    d = [(le, n - before.get(le, 0)) for le, n in b.get(name, [])]
    total = d[-1][1] if d else 0
    for p in (0.99, 0.999):
        cols.append(next(("%g" % (le * 1000) for le, n in d if total and n >= p * total), "-"))
print(" ".join(cols))
PY
}

run() { # round where load mode
    local r=$1 where=$2 load=$3 mode=$4 extra=() t stages="- - - -"
    [ "$mode" = ephemeral ] && extra=(--ephemeral)
    t=$out/$r-$where-$load-$mode
    start_fanoutd "$where"
    curl -s http://127.0.0.1:18090/metrics >"$t.metrics.0"
    if [ "$load" = w2 ]; then
        build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
            "${extra[@]}" --json "$t.json" >"$t.txt" 2>&1
    else
        build/bench/fanout-bench fanout --port 18090 --subscribers 100 --rate 200 --seconds 8 \
            "${extra[@]}" --json "$t.json" >"$t.txt" 2>&1
    fi
    curl -s http://127.0.0.1:18090/metrics >"$t.metrics.1"
    stop_fanoutd
    [ "$mode" = durable ] && stages=$(stage_line "$t.metrics.0" "$t.metrics.1")
    python3 - "$t.json" "$r" "$where" "$load" "$mode" "$stages" <<'PY'
import json, sys
j, r, where, load, mode, stages = sys.argv[1:]
d = json.load(open(j))["latency_ms"]
print(r, where, load, mode, "%.2f" % d["p50"], "%.2f" % d["p99"], "%.2f" % d["p999"], stages)
PY
}

echo "round pg load mode p50_ms p99_ms p999_ms queue_p99 queue_p999 commit_p99 commit_p999" >"$out/table.txt"
for r in $(seq "$rounds"); do
    for where in disk tmpfs; do
        for load in w2 w1; do
            for mode in durable ephemeral; do run "$r" "$where" "$load" "$mode" >>"$out/table.txt"; done
        done
    done
done
column -t "$out/table.txt"
