#!/usr/bin/env bash
# fanout-bench persist, the commit before (A: its fanout-bench, which links
# the writer) against the heads found by key (B: build/), alternated on one
# PostgreSQL whose channels table holds about two thousand channels (DSN,
# default var/hk-pg as run.sh of 20261207T120000Z-heads-by-key leaves it),
# a checkpoint before each run. From the repository root:
#   run.sh A_BENCH [ROUNDS] [DSN]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
abench=$1
rounds=${2:-3}
dsn=${3:-"host=127.0.0.1 port=25443 dbname=fanout user=fanout"}
{
echo "| round | side | channels | saturated durable/s | COPY rows/s | writer / COPY | 20,000/s offered p99 ms |"
echo "|---|---|---:|---:|---:|---:|---:|"
for r in $(seq "$rounds"); do
    sides="A B"; [ $((r % 2)) = 1 ] || sides="B A"
    for s in $sides; do
        b=build/bench/fanout-bench; [ "$s" = A ] && b=$abench
        psql -X -q "$dsn user=postgres" -c CHECKPOINT
        n=$(psql -X -At "$dsn" -c "select count(*) from channels")
        p=$here/persist-$s-$r.txt
        "$b" persist --dsn "$dsn" --writers 2 --rate 20000 --naive-messages 200 >"$p" 2>&1
        sat=$(awk '/^batched, saturated/ {print $4}' "$p")
        copy=$(sed -n 's/.*COPY.* \([0-9]*\) rows\/s.*/\1/p' "$p" | head -1)
        ratio=$(sed -n 's/.*the writer (batched, saturated) at \([0-9.]*\) of it/\1/p' "$p")
        off=$(awk '/^batched, 20000\/s offered/ {print $7}' "$p")
        echo "| $r | $s | $n | $sat | $copy | $ratio | $off |"
    done
done
} | tee "$here/table.txt"
