#!/usr/bin/env bash
# The offered load of `fanout-bench persist` swept from 2,500 to 20,000
# messages/s, two rounds, on the bench PostgreSQL as deploy/pgctl made it:
# per run the offered-load latency, and how busy the writer's and the
# indexer's backends were and how long they waited for a CPU (the bench's
# own lines). From the repository root:
#   bench/results/20261207T093000Z-persist-tail/sweep.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
for r in 1 2; do
    for rate in 2500 5000 10000 20000; do
        f=$here/sweep-$rate-$r.txt
        psql -X -q "host=127.0.0.1 port=55434 dbname=fanout user=postgres" -c CHECKPOINT
        build/bench/fanout-bench persist --dsn "$dsn" --writers 2 --rate "$rate" \
            --messages $((rate * 5)) --naive-messages 100 >"$f" 2>&1
        lat=$(grep "$rate/s offered" "$f" | awk '{print $6, $7, $8}')
        busy=$(grep -A2 "$rate/s offered" "$f" | sed -n 's/.*cores busy over the run: //p')
        wait=$(grep -A3 "$rate/s offered" "$f" | sed -n 's/.*waiting for a CPU over the run: //p')
        echo "round $r, $rate/s: p50/p99/p99.9 ms $lat | busy: $busy | waiting: $wait"
    done
done | tee "$here/sweep.txt"
