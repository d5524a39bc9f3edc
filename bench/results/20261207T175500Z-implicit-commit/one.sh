#!/usr/bin/env bash
# fanout-bench persist of two builds, alternated ROUNDS times, with batches
# of one message from one producer: each message its own transaction and
# round trip through the writer, where a statement more or less a batch
# shows most. From the repository root:
#   one.sh ROUNDS BUILD_A BUILD_B OUTDIR
set -uo pipefail
rounds=$1 a=$2 b=$3 out=$4
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
for r in $(seq "$rounds"); do
    sides="A B"; [ $((r % 2)) = 1 ] || sides="B A"
    for side in $sides; do
        if [ "$side" = A ]; then bdir=$a; else bdir=$b; fi
        "$bdir/bench/fanout-bench" persist --dsn "host=127.0.0.1 port=55434 dbname=fanout user=fanout" \
            --batch-max 1 --producers 1 --channels 64 --messages 4000 --naive-messages 1 \
            >"$out/one-$side-$r.txt" 2>&1
        sleep 3
    done
done
grep -H "^batched, saturated\|fanout writer" "$out"/one-*.txt
