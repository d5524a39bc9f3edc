#!/usr/bin/env bash
# fanoutd with 1 and with 2 service threads on the bench PostgreSQL
# (var/bench-pg, 55434). From the repository root:
#   run.sh w2 ROUNDS OUTDIR   W2 (1,000 users, 2,000 msg/s, 12 s), durable and
#                             ephemeral, 1 and 2 threads alternated ROUNDS
#                             times: fanoutd's CPU-seconds over 5 s in the
#                             middle of the run, its voluntary context
#                             switches then, the latency
#   run.sh w1 ROUNDS OUTDIR   the same for W1 (one channel) at 20,000 and
#                             1,000,000 deliveries/s, 8 s each: fanoutd's
#                             CPU over the run, per delivery, the latency
#   run.sh stages THREADS OUTDIR
#                             which stage of a durable message carries W2's
#                             tail: fanoutd's stage histograms (/metrics)
#                             before and after one W2 durable run; per stage
#                             the count and the bucket bounds of p50, p99
#                             and p99.9, beside the client's latency
#   run.sh nats THREADS OUTDIR
#                             bench/compare-nats at the issue's loads (W1
#                             100 x 200 and 1,000 x 1,000, W2) against
#                             fanoutd with THREADS service threads
set -uo pipefail
what=$1 rounds=$2 out=$3 threads=$2
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
switches() { # voluntary context switches of all the process's threads
    local s=0 n
    for t in /proc/"$1"/task/*; do
        n=$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status" 2>/dev/null || echo 0)
        s=$((s + ${n:-0}))
    done
    echo $s
}
start_fanoutd() { # threads: sets fpid
    printf '[server]\nport = 18090\nservice_threads = %s\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[log]\nlevel = warn\n' \
        "$1" >"$out/fanout-$1.ini"
    build/apps/fanoutd -c "$out/fanout-$1.ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
}
stop_fanoutd() { kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 3; }

w2() { # round threads mode
    local r=$1 threads=$2 mode=$3 extra=() j f0 f1 s0 s1 bpid
    [ "$mode" = ephemeral ] && extra=(--ephemeral)
    start_fanoutd "$threads"
    j=$out/$r-$threads-$mode.json
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
        "${extra[@]}" --json "$j" >"${j%.json}.txt" 2>&1 &
    bpid=$!
    sleep 4
    f0=$(cpu "$fpid"); s0=$(switches "$fpid"); sleep 5; f1=$(cpu "$fpid"); s1=$(switches "$fpid")
    wait "$bpid"
    stop_fanoutd
    python3 - "$j" "$r" "$threads" "$mode" "$f0" "$f1" "$s0" "$s1" <<'PY'
import json, sys
j, r, threads, mode, f0, f1, s0, s1 = sys.argv[1:]
d = json.load(open(j))["latency_ms"]
print(r, threads, mode, "%.2f" % ((int(f1) - int(f0)) / 100), int(s1) - int(s0),
      "%.2f" % d["p50"], "%.2f" % d["p99"], "%.2f" % d["p999"])
PY
}

w1() { # round threads: both loads, both modes, on one fanoutd
    local r=$1 threads=$2 load mode extra t c0 c1
    start_fanoutd "$threads"
    for load in 100x200 1000x1000; do
        for mode in durable ephemeral; do
            extra=(); [ "$mode" = ephemeral ] && extra=(--ephemeral)
            t=$out/$r-$threads-$load-$mode.txt
            c0=$(cpu "$fpid")
            build/bench/fanout-bench fanout --port 18090 --subscribers "${load%x*}" \
                --rate "${load#*x}" --seconds 8 "${extra[@]}" >"$t" 2>&1
            c1=$(cpu "$fpid")
            python3 - "$t" "$r" "$threads" "$load" "$mode" "$c0" "$c1" <<'PY'
import re, sys
t, r, threads, load, mode, c0, c1 = sys.argv[1:]
s = open(t).read()
d = re.search(r"(?m)^deliveries (\d+) in ([\d.]+) s", s)
lat = re.search(r"latency from due time:.*?p50 ([\d.]+).*?p99 ([\d.]+)", s, re.S)
cpu = (int(c1) - int(c0)) / 100
n, secs = int(d.group(1)), float(d.group(2))
print(r, threads, load, mode, round(n / secs), "%.2f" % cpu, "%.2f" % (cpu * 1e6 / n),
      lat.group(1), lat.group(2))
PY
            sleep 2
        done
    done
    stop_fanoutd
}

stages() {
    start_fanoutd "$threads"
    curl -s http://127.0.0.1:18090/metrics >"$out/metrics.0"
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
        --json "$out/w2.json" >"$out/w2.txt" 2>&1
    curl -s http://127.0.0.1:18090/metrics >"$out/metrics.1"
    stop_fanoutd
    python3 - "$out/metrics.0" "$out/metrics.1" "$out/w2.json" <<'PY' | tee "$out/stages.txt"
import json, re, sys
def buckets(path):
    h = {}
    for line in open(path):
        m = re.match(r'(fanout_\w+_seconds)_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            h.setdefault(m.group(1), []).append((float("inf") if m.group(2) == "+Inf" else float(m.group(2)), int(m.group(3))))
    return h
a, b = buckets(sys.argv[1]), buckets(sys.argv[2])
print("%-34s %8s %9s %9s %9s" % ("stage (ms, bucket bounds)", "count", "p50", "p99", "p99.9"))
for name in ["fanout_publish_accept_seconds", "fanout_persist_queue_seconds",
             "fanout_persist_commit_seconds", "fanout_persist_publish_seconds",
             "fanout_persist_callback_seconds", "fanout_fanout_seconds", "fanout_publish_seconds"]:
    if name not in b:
        continue
    before = dict(a.get(name, []))
    d = [(le, n - before.get(le, 0)) for le, n in b[name]]
    total = d[-1][1]
    def q(p):
        for le, n in d:
            if n >= p * total:
                return le * 1000
        return float("inf")
    print("%-34s %8d %9.2f %9.2f %9.2f" % (name[7:-8], total, q(0.5), q(0.99), q(0.999)))
lat = json.load(open(sys.argv[3]))["latency_ms"]
print("client, from due time: p50 %.2f p99 %.2f p99.9 %.2f" % (lat["p50"], lat["p99"], lat["p999"]))
PY
}

nats() {
    start_fanoutd "$threads"
    bench/compare-nats --port 18090 --seconds 8 --fanoutd-pid "$fpid" --out "$out/json" \
        --groups 1000x2000 100x200 1000x1000 | tee "$out/report.txt"
    stop_fanoutd
}

if [ "$what" = stages ]; then stages; exit 0; fi
if [ "$what" = nats ]; then nats; exit 0; fi
if [ "$what" = w2 ]; then
    echo "round threads mode fanoutd_cpu_s switches_5s p50_ms p99_ms p999_ms" >"$out/table.txt"
    for r in $(seq "$rounds"); do
        for threads in 1 2; do
            for mode in durable ephemeral; do w2 "$r" "$threads" "$mode" >>"$out/table.txt"; done
        done
    done
else
    echo "round threads load mode deliveries_s fanoutd_cpu_s us_per_delivery p50_ms p99_ms" >"$out/table.txt"
    for r in $(seq "$rounds"); do
        for threads in 1 2; do w1 "$r" "$threads" >>"$out/table.txt"; done
    done
fi
column -t "$out/table.txt"
