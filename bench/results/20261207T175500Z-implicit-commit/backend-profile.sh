#!/usr/bin/env bash
# Where the writer's PostgreSQL backend spends its CPU when every batch is
# one message (fanout-bench persist --batch-max 1, one producer): perf
# record of that backend for 10 s during the offered-load part, then the
# top of perf report. From the repository root:
#   backend-profile.sh BUILD OUTPREFIX
set -uo pipefail
bdir=$1 out=$2
deploy/pgctl start var/bench-pg 55434 >/dev/null
admin="host=127.0.0.1 port=55434 dbname=fanout user=postgres"
"$bdir/bench/fanout-bench" persist --dsn "host=127.0.0.1 port=55434 dbname=fanout user=fanout" \
    --batch-max 1 --producers 1 --channels 64 --messages 4000 --naive-messages 1 \
    >"$out.txt" 2>&1 &
bpid=$!
sleep 12
pid=$(psql -X -At "$admin" -c "select pid from pg_stat_activity where application_name = 'fanout writer' limit 1")
perf record -g -o "$out.perf" -p "$pid" -- sleep 10 >/dev/null 2>&1
wait "$bpid"
perf report -i "$out.perf" --no-children --sort symbol --stdio 2>/dev/null | grep -v "^#" | grep "%" | head -60 >"$out.top"
perf report -i "$out.perf" --children --sort symbol --stdio -g none 2>/dev/null | grep -v "^#" | grep "%" | head -60 >"$out.children"
