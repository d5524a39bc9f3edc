#!/usr/bin/env bash
# The writer's append of large batches by COPY (copy_min_rows 256, the
# default) against the pipelined INSERT for every batch (copy_min_rows 0),
# one and two lanes, alternated three rounds on one PostgreSQL:
# `fanout-bench persist` saturated, its COPY ceiling, and p99 at 20,000/s
# offered. Run from the repository root with the bench PostgreSQL (port
# 55434) up.
set -euo pipefail
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
out=$(dirname "$0")
echo "| round | lanes | copy_min_rows | saturated durable/s | COPY rows/s | writer / COPY | writer backends busy | p99 ms at 20,000/s |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for r in 1 2 3; do
    for lanes in 1 2; do
        for c in 0 256; do
            f=$out/round$r-lanes$lanes-copy$c.txt
            build/bench/fanout-bench persist --dsn "$dsn" --messages 200000 --naive-messages 100 \
                --writers $lanes --copy-min $c >"$f" 2>&1
            awk -v r=$r -v l=$lanes -v c=$c '
                /^batched, saturated/ { sat = $(NF-4) }
                /^batched, [0-9]+\/s offered/ { p99 = $(NF-2) }
                /cores busy over the run/ && !busy { for (i = 1; i <= NF; i++) if ($i == "writer") busy = $(i+1) }
                /^ceiling:/ { for (i = 1; i <= NF; i++) if ($i == "rows/s") copy = $(i-1); frac = $(NF-2) }
                END { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r, l, c, sat, copy, frac, busy, p99 }' "$f"
        done
    done
done
