#!/bin/bash
# Lanes over PostgreSQL's partitions (part.patch, an experiment not on main:
# channels 1-64 to lane partition % 2 when EXP_PART is set, the writer's
# hash otherwise) against the writer's hash, alternated, fanout-bench
# persist with two lanes on the bench PostgreSQL; the writer backends' CPU
# per row beside the rate. Usage: part.sh BIN ROUNDS OUT (BIN a fanout-bench
# built with the patch)
set -eu
bin=$1 rounds=$2 out=$3
mkdir -p "$out"
summary() { # FILE MODE ROUND: one line
	awk -v m="$2" -v r="$3" '
		/^batched, saturated/ { rate = $4 }
		/cores busy/ && !busy { for (i = 1; i <= NF; i++) if ($i == "writer") busy = $(i + 1) }
		/^ceiling/ { for (i = 1; i <= NF; i++) if ($i == "at") frac = $(i + 1) }
		END { printf "%s %s: %d durable/s, writer backends %.2f cores, %.1f us a row, %s of the COPY\n", r, m, rate, busy, busy / rate * 1e6, frac }' "$1"
}
[ "$rounds" = 0 ] && for f in "$out"/*-*.txt; do # summarise a run made before
	b=$(basename "$f" .txt)
	summary "$f" "${b%-*}" "${b#*-}"
done
for r in $(seq 1 "$rounds"); do
	for m in hash part; do
		if [ "$m" = part ]; then export EXP_PART=1; else unset EXP_PART; fi
		"$bin" persist --writers 2 >"$out/$m-$r.txt" 2>&1
		summary "$out/$m-$r.txt" "$m" "$r"
	done
done
