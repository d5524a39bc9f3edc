#!/usr/bin/env bash
# The search indexer yielding to a writer lane behind its queue, against
# the indexer before (BEFORE, AFTER: two fanout-bench binaries built from
# the two trees), alternated ROUNDS times with one and two lanes on the
# bench PostgreSQL (var/bench-pg, 55434): `fanout-bench persist`
# saturated (200,000 messages, 64 channels), its COPY ceiling, the index's
# catch-up after the last commit, and p99 at 20,000/s offered.
#   run.sh BEFORE AFTER ROUNDS OUTDIR      (from the repository root)
set -euo pipefail
before=$1 after=$2 rounds=$3 out=$4
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
echo "round lanes build saturated_per_s copy_rows_per_s writer_over_copy writer_busy indexer_busy index_caught_up_ms p99_ms_20000" >"$out/table.txt"
for r in $(seq "$rounds"); do
    for lanes in 1 2; do
        for b in before after; do
            bin=$before; [ $b = after ] && bin=$after
            f=$out/$r-$lanes-$b.txt
            "$bin" persist --dsn "$dsn" --messages 200000 --naive-messages 100 --writers "$lanes" >"$f" 2>&1
            awk -v r="$r" -v l="$lanes" -v b="$b" '
                /^batched, saturated/ { sat = $(NF-4); s = 1; next }
                s == 1 && /caught up/ { caught = $5 }
                s == 1 && /cores busy over the run/ {
                    for (i = 1; i <= NF; i++) { if ($i == "writer") wb = $(i+1); if ($i == "indexer") ib = $(i+1) }
                    s = 2 }
                /^batched, [0-9]+\/s offered/ { p99 = $(NF-2) }
                /^ceiling:/ { for (i = 1; i <= NF; i++) if ($i == "rows/s") copy = $(i-1); frac = $(NF-2) }
                END { print r, l, b, sat, copy, frac, wb, ib, caught, p99 }' "$f" >>"$out/table.txt"
        done
    done
done
column -t "$out/table.txt"
