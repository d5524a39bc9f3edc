#!/bin/bash
# What the COPY ceiling's scratch table leaves out: one COPY of 200,000 rows
# (psql's \copy, text) into the scratch table as fanout-bench persist makes
# it (LIKE messages INCLUDING ALL: one heap, no trigger, empty), into a
# table of the same columns hash-partitioned eight ways as messages is and,
# like messages, never emptied, and into messages itself, on a cluster made
# fresh for the run, a CHECKPOINT before each; each round's rows on new
# channels (no key of an earlier round, no dead rows).
# Usage: table-shape.sh ROUNDS
set -eu
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
fresh=var/shape-pg-$$
rows=$(mktemp)
trap 'deploy/pgctl stop "$fresh" >/dev/null 2>&1 || true; rm -rf "$fresh" "$rows"' EXIT
deploy/pgctl start "$fresh" 55443 >/dev/null
dsn="host=127.0.0.1 port=55443 dbname=fanout user=fanout"
su="host=127.0.0.1 port=55443 dbname=fanout user=postgres"
FANOUT_PG_DSN=$dsn timeout 60 build/bench/fanout-bench persist --messages 100 \
	--naive-messages 1 --rate 1000 >/dev/null 2>&1 # the schema
{
	echo "create table scratch (like messages including all);"
	echo "create table scratch8 (like messages including all) partition by hash (channel_id);"
	for i in 0 1 2 3 4 5 6 7; do
		echo "create table scratch8_p$i partition of scratch8 for values with (modulus 8, remainder $i);"
	done
} | psql -q "$dsn"
make_rows() { # ROUND: 200,000 rows on that round's own channels
	python3 - "$rows" "$1" <<'PY'
import sys
r = int(sys.argv[2])
with open(sys.argv[1], 'w') as f:
    for i in range(200000):
        f.write(f"{1000 + 64 * r + i % 64}\t{i // 64 + 1}\t{1 + i % 4}\tmessage\t{'b' * 100}"
                f"\tc-{i}\t2026-12-05 00:00:00+00\t{{}}\n")
PY
}
cols="(channel_id, seq, author_id, kind, body, client_msg_id, created_at, mentions)"
copy_into() { # TABLE: milliseconds of the \copy
	psql -q "$su" -c checkpoint
	psql "$dsn" -c '\timing on' -c "\\copy $1 $cols from $rows" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
for r in $(seq 1 "$rounds"); do
	make_rows "$r"
	psql -q "$dsn" -c "truncate scratch"
	a=$(copy_into scratch)
	b=$(copy_into scratch8)
	c=$(copy_into messages)
	echo "round $r ms: scratch (empty) $a, in 8 partitions (growing) $b, messages (growing) $c"
done
