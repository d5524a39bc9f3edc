#!/usr/bin/env bash
# W2 on fanout durable (DMs), fanout ephemeral (fanout-bench groups
# --ephemeral: the pairs ephemeral channels of two) and NATS, through
# bench/compare-nats (one small W1 load beside, which it needs), ROUNDS
# times, a fresh fanoutd on the bench PostgreSQL (var/bench-pg, 55434) each
# round. From the repository root:
#   run.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
rounds=${1:-3}
export FANOUT_JWT_SECRET=bench-secret
deploy/pgctl start var/bench-pg 55434 >/dev/null
ini=$here/fanout.ini
printf '[server]\nport = 18090\nservice_threads = 2\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[log]\nlevel = warn\n' >"$ini"
for r in $(seq "$rounds"); do
    build/apps/fanoutd -c "$ini" >>"$here/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
    psql -X -q "host=127.0.0.1 port=55434 dbname=fanout user=postgres" -c CHECKPOINT
    bench/compare-nats --port 18090 --seconds 8 --out "$here/round-$r" --groups 1000x2000 100x20 \
        >"$here/round-$r.txt"
    kill "$fpid"; wait "$fpid" 2>/dev/null || true
    sleep 3
done
grep -h "^| W2" "$here"/round-*.txt | tee "$here/table.txt"
