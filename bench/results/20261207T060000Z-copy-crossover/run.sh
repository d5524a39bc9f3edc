#!/usr/bin/env bash
# Where COPY starts to pay: `fanout-bench persist` saturated with batches
# held to S rows (--batch-max S), every batch by the pipelined INSERT
# (--copy-min 0) or by COPY (--copy-min 1), two rounds. Measured with the
# first version of the COPY path (BEGIN and the heads' UPDATE in two round
# trips, not one). Run from the repository root with the bench PostgreSQL
# (port 55434) up. Columns: round, S, copy_min_rows, durable/s.
set -euo pipefail
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
d=$(dirname "$0")
for r in 1 2; do for s in 8 32 64 128 256 1024; do for c in 0 1; do
    n=$((s * 150)); [ $n -gt 200000 ] && n=200000
    build/bench/fanout-bench persist --dsn "$dsn" --messages $n --naive-messages 10 --rate 0 \
        --batch-max $s --copy-min $c >$d/r$r-b$s-c$c.txt 2>&1
    printf "| %s | %s | %s | %s |\n" $r $s $c "$(awk '/^batched, saturated/ {print $(NF-4)}' $d/r$r-b$s-c$c.txt)"
done; done; done | tee $d/table.md
