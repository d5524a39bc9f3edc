#!/usr/bin/env bash
# Which stage of a durable message carries W2's tail: fanoutd's stage
# histograms (/metrics) read before and after W2 durable (1,000 users,
# 2,000 msg/s, 12 s) with THREADS service threads, on the bench
# PostgreSQL (var/bench-pg, 55434); per stage the count and the bucket
# bounds of p50, p99 and p99.9 of the run's observations, beside the
# client's latency. From the repository root:
#   stages.sh THREADS OUTDIR
set -uo pipefail
threads=$1 out=$2
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
printf '[server]\nport = 18090\nservice_threads = %s\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[log]\nlevel = warn\n' \
    "$threads" >"$out/fanout.ini"
build/apps/fanoutd -c "$out/fanout.ini" >>"$out/fanoutd.log" 2>&1 &
fpid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
curl -s http://127.0.0.1:18090/metrics >"$out/metrics.0"
build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
    --json "$out/w2.json" >"$out/w2.txt" 2>&1
curl -s http://127.0.0.1:18090/metrics >"$out/metrics.1"
kill "$fpid"; wait "$fpid" 2>/dev/null
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
