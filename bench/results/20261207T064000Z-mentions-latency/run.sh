#!/usr/bin/env bash
# W1 durable and ephemeral at low loads with 0010's and 0015's mentions
# function alternated (fanoutd on the bench PostgreSQL, port 18090). From
# the repository root: bench/results/THIS/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
out=$(dirname "$0")
mkdir -p "$out"
export FANOUT_JWT_SECRET=latsecret
old="CREATE OR REPLACE FUNCTION fanout_mentions(body text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN fanout_mentions_scan_0010(body)"
psql "$dsn" -qc "$(sed -n '/^CREATE FUNCTION/,/ORDER BY 1);/p' persist/migrations/0010_mentions.sql |
    sed 's/CREATE FUNCTION fanout_mentions(/CREATE OR REPLACE FUNCTION fanout_mentions_scan_0010(/')"
new=$(sed -n '/^CREATE OR REPLACE/,$p' persist/migrations/0015_mentions_fast_path.sql)
build/apps/fanoutd -c "$out/fanout.ini" > "$out/fanoutd.log" 2>&1 &
fpid=$!
trap 'kill $fpid 2>/dev/null; psql "$dsn" -qc "$new"' EXIT
for i in $(seq 50); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
for r in 1 2 3; do
    for v in old new; do
        if [ $v = old ]; then psql "$dsn" -qc "$old"; else psql "$dsn" -qc "$new"; fi
        bench/compare-nats --port 18090 --seconds 8 --fanoutd-pid $fpid --systems fanout-durable,fanout-ephemeral \
            --out "$out/round$r-$v" 100x20 100x200 > "$out/round$r-$v.txt" 2>&1
    done
done
