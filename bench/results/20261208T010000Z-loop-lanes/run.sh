#!/usr/bin/env bash
# The writer lanes on the service threads ([persist] on_service_threads,
# persist/lane_loop.c) against the lanes on their own threads, on the
# bench PostgreSQL (var/bench-pg, 55434), one service thread, alternated.
# From the repository root:
#   run.sh w2 ROUNDS OUTDIR   W2 (1,000 users, 2,000 msg/s, 12 s) durable:
#                             over 5 s in the middle, fanoutd's CPU by
#                             thread (service, writer lanes, the rest) and
#                             its voluntary context switches, the writer
#                             backends' CPU; the latency; the loop's
#                             batches and hand-backs over the run
#   run.sh w1 ROUNDS OUTDIR   W1 100 x 200 and 1,000 x 1,000 durable, 8 s
#                             each: fanoutd's CPU per delivery, the latency
#   run.sh nats ROUNDS OUTDIR bench/compare-nats at the issue's loads beside
#                             fanoutd with the lanes on and off, alternated
set -uo pipefail
what=$1 rounds=$2 out=$3
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
threads() { # pid: "name ticks switches" per thread
    local t
    for t in /proc/"$1"/task/*; do
        echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat") $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"
    done
}
backends() { # the writer lanes' backends' pids
    psql -h 127.0.0.1 -p 55434 -U fanout -d fanout -Atc \
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'fanout writer%'"
}
backend_ticks() { local s=0 p; for p in $1; do s=$((s + $(ticks "$p"))); done; echo $s; }
start_fanoutd() { # on|off: sets fpid
    printf '[server]\nport = 18090\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[persist]\non_service_threads = %s\n[log]\nlevel = warn\n' \
        "$([ "$1" = on ] && echo true || echo false)" >"$out/fanout-$1.ini"
    build/apps/fanoutd -c "$out/fanout-$1.ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
}
stop_fanoutd() { kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 3; }
counter() { grep "^$1 " "$2" | awk '{print $2}'; }

w2() { # round on|off
    local r=$1 m=$2 t=$out/$1-w2-$2 bpid pids b0 b1
    start_fanoutd "$m"
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
        --json "$t.json" >"$t.txt" 2>&1 &
    bpid=$!
    sleep 4
    pids=$(backends)
    threads "$fpid" >"$t.threads0"; b0=$(backend_ticks "$pids")
    sleep 5
    threads "$fpid" >"$t.threads1"; b1=$(backend_ticks "$pids")
    wait "$bpid"
    curl -s http://127.0.0.1:18090/metrics >"$t.metrics"
    stop_fanoutd
    python3 - "$t" "$r" "$m" "$((b1 - b0))" \
        "$(counter fanout_persist_loop_batches_total "$t.metrics")" \
        "$(counter fanout_persist_loop_handbacks_total "$t.metrics")" \
        "$(counter fanout_persist_batches_total "$t.metrics")" <<'PY'
import json, sys
t, r, m, backend, loop, handbacks, batches = sys.argv[1:]
def read(path):
    out = {}
    for line in open(path):
        name, ticks, sw = line.split()
        out.setdefault(name, [0, 0])
        out[name][0] += int(ticks); out[name][1] += int(sw)
    return out
a, b = read(t + ".threads0"), read(t + ".threads1")
d = {k: (b[k][0] - a.get(k, [0, 0])[0], b[k][1] - a.get(k, [0, 0])[1]) for k in b}
svc = sum(v[0] for k, v in d.items() if k.startswith("service"))
lanes = sum(v[0] for k, v in d.items() if k.startswith("writer"))
rest = sum(v[0] for k, v in d.items()) - svc - lanes
sw = sum(v[1] for v in d.values())
l = json.load(open(t + ".json"))["latency_ms"]
print(r, m, "%.2f" % ((svc + lanes + rest) / 100), "%.2f" % (svc / 100), "%.2f" % (lanes / 100),
      "%.2f" % (rest / 100), sw, "%.2f" % (int(backend) / 100),
      "%.2f" % l["p50"], "%.2f" % l["p99"], "%.2f" % l["p999"], loop or 0, handbacks or 0, batches)
PY
}

w1() { # round on|off
    local r=$1 m=$2 load t c0 c1
    start_fanoutd "$m"
    for load in 100x200 1000x1000; do
        t=$out/$r-w1-$load-$m.txt
        c0=$(ticks "$fpid")
        build/bench/fanout-bench fanout --port 18090 --subscribers "${load%x*}" \
            --rate "${load#*x}" --seconds 8 >"$t" 2>&1
        c1=$(ticks "$fpid")
        python3 - "$t" "$r" "$m" "$load" "$c0" "$c1" <<'PY'
import re, sys
t, r, m, load, c0, c1 = sys.argv[1:]
s = open(t).read()
d = re.search(r"(?m)^deliveries (\d+) in ([\d.]+) s", s)
lat = re.search(r"latency from due time:.*?p50 ([\d.]+).*?p99 ([\d.]+)", s, re.S)
cpu = (int(c1) - int(c0)) / 100
n = int(d.group(1))
print(r, m, load, "%.2f" % cpu, "%.2f" % (cpu * 1e6 / n), lat.group(1), lat.group(2))
PY
        sleep 2
    done
    stop_fanoutd
}

nats() { # round on|off
    start_fanoutd "$2"
    bench/compare-nats --port 18090 --seconds 8 --fanoutd-pid "$fpid" --out "$out/json-$1-$2" \
        --groups 1000x2000 100x200 1000x1000 >"$out/nats-$1-$2.txt" 2>&1
    stop_fanoutd
}

case $what in
nats)
    for r in $(seq "$rounds"); do for m in on off; do nats "$r" "$m"; done; done
    grep -H "" "$out"/nats-*.txt | grep -iE "W1|W2|fanout|nats" | head -80 ;;
w2)
    echo "round loop fanoutd_cpu_s service_s lanes_s rest_s switches writer_backends_s p50_ms p99_ms p999_ms loop_batches handbacks batches" >"$out/w2.txt"
    for r in $(seq "$rounds"); do for m in on off; do w2 "$r" "$m" >>"$out/w2.txt"; done; done
    column -t "$out/w2.txt" ;;
w1)
    echo "round loop load fanoutd_cpu_s us_per_delivery p50_ms p99_ms" >"$out/w1.txt"
    for r in $(seq "$rounds"); do for m in on off; do w1 "$r" "$m" >>"$out/w1.txt"; done; done
    column -t "$out/w1.txt" ;;
esac
