#!/usr/bin/env bash
# The 20,000/s tail of `fanout-bench persist`: the same run with the bench
# PostgreSQL's settings as deploy/pgctl made them (A) and with its
# background writer and checkpoints tuned (B), alternated round by round
# (ALTER SYSTEM and a reload between runs; every setting here takes effect
# on reload). Per run: the bench's output, and what pg_stat_bgwriter counted
# meanwhile (buffers written by the backends themselves, by the background
# writer, by checkpoints; checkpoints). Needs the bench PostgreSQL
# (deploy/pgctl start var/bench-pg 55434) and build/bench/fanout-bench.
#   bench/results/20261207T093000Z-persist-tail/run.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
su="host=127.0.0.1 port=55434 dbname=fanout user=postgres"
rounds=${1:-3}
settings() { # A or B
    if [ "$1" = A ]; then
        psql -X -q "$su" -c "ALTER SYSTEM RESET bgwriter_delay" -c "ALTER SYSTEM RESET bgwriter_lru_maxpages" \
            -c "ALTER SYSTEM RESET bgwriter_lru_multiplier" -c "ALTER SYSTEM RESET wal_compression" \
            -c "ALTER SYSTEM RESET max_wal_size" -c "SELECT pg_reload_conf()" >/dev/null
    else
        psql -X -q "$su" -c "ALTER SYSTEM SET bgwriter_delay = '10ms'" -c "ALTER SYSTEM SET bgwriter_lru_maxpages = 1000" \
            -c "ALTER SYSTEM SET bgwriter_lru_multiplier = 4" -c "ALTER SYSTEM SET wal_compression = 'lz4'" \
            -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" >/dev/null
    fi
    sleep 1
}
stats() {
    psql -X -At "$dsn" -c "SELECT buffers_backend, buffers_clean, buffers_checkpoint, checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
}
for r in $(seq "$rounds"); do
    for s in A B; do
        settings "$s"
        before=$(stats)
        build/bench/fanout-bench persist --dsn "$dsn" --writers 2 --rate 20000 --messages 100000 \
            --naive-messages 100 > "$here/run-$r-$s.txt" 2>&1
        after=$(stats)
        IFS='|' read -r b0 c0 k0 n0 <<<"$before"
        IFS='|' read -r b1 c1 k1 n1 <<<"$after"
        offered=$(grep "20000/s offered" "$here/run-$r-$s.txt" | awk '{print $6, $7, $8}')
        wait=$(grep -A3 "20000/s offered" "$here/run-$r-$s.txt" | sed -n 's/.*waiting for a CPU over the run: //p')
        echo "round $r $s | offered p50/p99/p99.9 ms: $offered | backend writes $((b1 - b0)), bgwriter $((c1 - c0)), checkpoint $((k1 - k0)), checkpoints $((n1 - n0)) | waiting: $wait"
    done
done | tee "$here/summary.txt"
settings A
