#!/usr/bin/env bash
# How long W2's threads wait for a CPU once woken: /proc/TID/schedstat
# (time run, time waiting on a run queue, times run) of every fanoutd
# thread by name, of the writer backends and of the load generator, over
# 5 s in the middle of W2 (1,000 users, 2,000 msg/s, 12 s), durable and
# ephemeral, with THREADS service threads, on the bench PostgreSQL
# (var/bench-pg, 55434). From the repository root:
#   sched.sh THREADS OUTDIR
set -uo pipefail
threads=$1 out=$2
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
admin="host=127.0.0.1 port=55434 dbname=fanout user=postgres"
snapshot() { # name pid...: one line a thread: name run_ns wait_ns slices
    local name=$1 p t; shift
    for p in "$@"; do
        for t in /proc/"$p"/task/*; do
            [ -r "$t/schedstat" ] || continue
            if [ "$name" = - ]; then echo "$(cat "$t/comm")|$(basename "$t") $(cat "$t/schedstat")"
            else echo "$name|$(basename "$t") $(cat "$t/schedstat")"; fi
        done
    done
}
for mode in durable ephemeral; do
    printf '[server]\nport = 18090\nservice_threads = %s\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[log]\nlevel = warn\n' \
        "$threads" >"$out/fanout.ini"
    build/apps/fanoutd -c "$out/fanout.ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
    extra=(); [ "$mode" = ephemeral ] && extra=(--ephemeral)
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
        "${extra[@]}" --json "$out/$mode.json" >"$out/$mode.txt" 2>&1 &
    bpid=$!
    sleep 4
    pg=$(psql -X -At "$admin" -c "select string_agg(pid::text, ' ') from pg_stat_activity where application_name like 'fanout writer%' or application_name = 'fanout search indexer'")
    { snapshot - "$fpid"; snapshot pg-backend $pg; snapshot load-generator "$bpid"; } >"$out/$mode.t0"
    sleep 5
    { snapshot - "$fpid"; snapshot pg-backend $pg; snapshot load-generator "$bpid"; } >"$out/$mode.t1"
    wait "$bpid"
    kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 3
    python3 - "$out/$mode.t0" "$out/$mode.t1" "$out/$mode.json" >"$out/$mode.table" <<'PY'
import json, sys
def load(path):
    d = {}
    for line in open(path):
        key, run, wait, slices = line.split()
        d[key] = (int(run), int(wait), int(slices))
    return d
t0, t1 = load(sys.argv[1]), load(sys.argv[2])
by = {}
for key, (run, wait, slices) in t1.items():
    r0, w0, s0 = t0.get(key, (0, 0, 0))
    name = key.split("|")[0]
    a = by.setdefault(name, [0, 0, 0, 0])
    a[0] += run - r0; a[1] += wait - w0; a[2] += slices - s0; a[3] += 1
print("%-16s %7s %9s %10s %9s %12s" % ("thread", "threads", "cpu_ms", "waited_ms", "runs", "wait_us/run"))
for name, (run, wait, slices, n) in sorted(by.items(), key=lambda x: -x[1][0]):
    if slices == 0:
        continue
    print("%-16s %7d %9.1f %10.1f %9d %12.1f" % (name, n, run / 1e6, wait / 1e6, slices, wait / 1e3 / slices))
lat = json.load(open(sys.argv[3]))["latency_ms"]
print("latency ms: p50 %.2f p99 %.2f p99.9 %.2f" % (lat["p50"], lat["p99"], lat["p999"]))
PY
    echo "== $mode, $threads service threads"; cat "$out/$mode.table"
done
