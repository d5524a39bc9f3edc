#!/usr/bin/env bash
# The append's shape priced by pgbench on the bench's PostgreSQL
# (var/bench-pg, port 55434): heads' UPDATE alone, rows in one channel or
# spread over 64, and one COPY into messages against one into a scratch
# table. Output: results.txt beside this script. docs/benchmarks.md, "The
# writer's backend, busy or waiting".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${1:-55434}
bin=/usr/lib/postgresql/15/bin
P="$bin/psql -h 127.0.0.1 -p $port -U fanout -d fanout -qtAX"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ids=$($P -c "WITH c AS (INSERT INTO channels (name, kind) SELECT 'shape-'||g||'-'||clock_timestamp(), 'public' FROM generate_series(1,64) g RETURNING id) SELECT string_agg(id::text, ',') FROM c")
one=${ids%%,*}
append() { # ids -> a transaction: heads moved by :per, :per rows per channel
    cat <<SQL
BEGIN;
WITH head AS (UPDATE channels c SET last_seq = c.last_seq + :per FROM unnest('{$1}'::int8[]) AS g(id) WHERE c.id = g.id RETURNING c.id, c.last_seq, c.owner_epoch) INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body, parent_seq, created_at, owner_epoch) SELECT head.id, head.last_seq - :per + k, 1, 'cm-' || head.id || '-' || (head.last_seq - :per + k), 'message', repeat('b', 100), NULL, now(), head.owner_epoch FROM head, generate_series(1, :per) k;
COMMIT;
SQL
}
heads() { printf "BEGIN;\nUPDATE channels c SET last_seq = c.last_seq FROM unnest('{%s}'::int8[]) AS g(id) WHERE c.id = g.id;\nCOMMIT;\n" "$1"; }
append "$one" >"$tmp/one.sql"; append "$ids" >"$tmp/all.sql"
heads "$one" >"$tmp/h1.sql"; heads "$ids" >"$tmp/h64.sql"
pb() { $bin/pgbench -n -M prepared -h 127.0.0.1 -p "$port" -U fanout "$@" fanout 2>&1 | sed -n 's/^latency average = //p'; }
{
for run in 1 2; do
    echo "run $run"
    echo "one head UPDATE: $(pb -t 300 -f "$tmp/h1.sql")"
    echo "64 heads UPDATE: $(pb -t 300 -f "$tmp/h64.sql")"
    for per in 1 64 1024; do echo "1 channel x $per rows: $(pb -t 100 -D per=$per -f "$tmp/one.sql")"; done
    for per in 1 16; do echo "64 channels x $per rows: $(pb -t 100 -D per=$per -f "$tmp/all.sql")"; done
    cids=$($P -c "WITH c AS (INSERT INTO channels (name, kind) SELECT 'shape-copy-'||g||'-'||clock_timestamp(), 'public' FROM generate_series(1,64) g RETURNING id) SELECT string_agg(id::text, ' ') FROM c")
    python3 - $cids >"$tmp/rows.tsv" <<'PY'
import sys
ids = sys.argv[1:]; heads = {}
for i in range(200000):
    ch = ids[i % 64]; heads[ch] = heads.get(ch, 0) + 1
    print(f"{ch}\t{heads[ch]}\t{1 + i % 4}\tmessage\t{'b' * 100}\tc1-{i}\t2026-12-05 00:00:00+00")
PY
    cols="(channel_id, seq, author_id, kind, body, client_msg_id, created_at)"
    s=$(date +%s.%N); $P -c "BEGIN" -c "\\copy messages $cols from '$tmp/rows.tsv'" -c "COMMIT"; e=$(date +%s.%N)
    echo "COPY 200000 rows into messages: $(python3 -c "print(round(200000 / ($e - $s)))") rows/s"
    $P -c "CREATE TABLE shape_scratch (LIKE messages INCLUDING ALL)"
    s=$(date +%s.%N); $P -c "BEGIN" -c "\\copy shape_scratch $cols from '$tmp/rows.tsv'" -c "COMMIT"; e=$(date +%s.%N)
    echo "COPY 200000 rows into a scratch table: $(python3 -c "print(round(200000 / ($e - $s)))") rows/s"
    $P -c "DROP TABLE shape_scratch"
done
} | tee "$here/results.txt"
