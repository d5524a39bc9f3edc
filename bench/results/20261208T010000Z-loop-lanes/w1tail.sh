#!/usr/bin/env bash
# W1 100 x 200 durable (one channel, 20,000 deliveries/s), the lanes on the
# service threads and off, alternated ROUNDS times, 8 s each: the client's
# latency and, from fanoutd's stage histograms over the run, the mean wait
# in the lane's queue and the mean commit. From the repository root, after
# run.sh (its fanout-on.ini and fanout-off.ini in OUTDIR):
#   w1tail.sh ROUNDS OUTDIR
set -uo pipefail
rounds=$1 out=$2
export FANOUT_JWT_SECRET=bench-secret
mean() { # metric file -> ms
    awk -v m="$1" '$1 == m "_sum" {s = $2} $1 == m "_count" {n = $2} END {printf "%.3f", n ? s / n * 1000 : 0}' "$2"
}
echo "round loop p50_ms p99_ms p999_ms queue_mean_ms commit_mean_ms" >"$out/w1tail.txt"
for r in $(seq "$rounds"); do
    for m in on off; do
        build/apps/fanoutd -c "$out/fanout-$m.ini" >>"$out/fanoutd.log" 2>&1 &
        fpid=$!
        for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
        build/bench/fanout-bench fanout --port 18090 --subscribers 100 --rate 200 --seconds 8 \
            >"$out/w1tail-$r-$m.txt" 2>&1
        curl -s http://127.0.0.1:18090/metrics >"$out/w1tail-$r-$m.metrics"
        kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 2
        lat=$(grep '^latency' "$out/w1tail-$r-$m.txt" | sed -E 's/.*p50 ([0-9.]+).*p99 ([0-9.]+).*p99.9 ([0-9.]+).*/\1 \2 \3/')
        echo "$r $m $lat $(mean fanout_persist_queue_seconds "$out/w1tail-$r-$m.metrics") $(mean fanout_persist_commit_seconds "$out/w1tail-$r-$m.metrics")" >>"$out/w1tail.txt"
    done
done
column -t "$out/w1tail.txt"
