#!/bin/bash
# batch_max 1,024 against 4,096 (two lanes), alternated, fanout-bench persist on the bench
# PostgreSQL: the rate, the writer backends' CPU per row and the COPY's.
# Usage: batchmax.sh ROUNDS OUT
set -eu
cd "$(dirname "$0")/../../.."
rounds=$1 out=$2
mkdir -p "$out"
export FANOUT_PG_DSN="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
for r in $(seq 1 "$rounds"); do
	for bmax in 1024 4096; do
		f=$out/bmax$bmax-$r.txt
		build/bench/fanout-bench persist --writers 2 --batch-max "$bmax" >"$f" 2>&1
		awk -v l="$bmax" -v r="$r" '
			/^batched, saturated/ { rate = $4 }
			/cores busy/ && !busy { for (i = 1; i <= NF; i++) if ($i == "writer") busy = $(i + 1) }
			/^ceiling/ { for (i = 1; i <= NF; i++) { if ($i == "at") frac = $(i + 1); if ($i == "rows/s") copy = $(i - 1) } }
			/backend was busy/ { cc = $6 }
			END { printf "%s, batch_max %s: %d durable/s, %.1f us a row in the writer backends; COPY %d rows/s, %.1f us a row; writer / COPY %s\n", r, l, rate, busy / rate * 1e6, copy, cc / copy * 1e6, frac }' "$f"
	done
done
