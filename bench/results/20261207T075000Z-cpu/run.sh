#!/usr/bin/env bash
# The issue's loads again after this stop's PostgreSQL changes (mentions
# inlined, the indexer's statement prepared, large batches by COPY):
# bench/compare-nats as on 2026-12-05 (bench/results/20261205T234724Z-cpu),
# fanoutd on the bench PostgreSQL (port 55434). run.sh final: the same
# after migration 0016 and the indexer's 20 ms rounds, into final/.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=$(dirname "$0")/${1:-.}
export FANOUT_JWT_SECRET=bench-secret
build/apps/fanoutd -c "$(dirname "$0")/fanout.ini" >"$out/fanoutd.log" 2>&1 &
fpid=$!
trap 'kill $fpid 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
bench/compare-nats --port 18090 --seconds 8 --fanoutd-pid $fpid --out "$out/json" --groups 1000x2000 \
    100x20 100x200 1000x200 1000x1000
