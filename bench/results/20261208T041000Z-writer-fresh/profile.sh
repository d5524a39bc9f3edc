#!/bin/bash
# Where the writer's backends and the COPY's spend their CPU: perf's call
# graphs (499 Hz) of the two writer backends over 5 s of a saturated run of
# 1,000,000 messages, then of the COPY ceiling's backend over 1.5 s of its
# COPY, on the bench PostgreSQL. Usage: profile.sh OUT
set -eu
cd "$(dirname "$0")/../../.."
out=$1
mkdir -p "$out"
export FANOUT_PG_DSN="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
build/bench/fanout-bench persist --writers 2 --messages 1000000 --naive-messages 10 \
	>"$out/profile-run.txt" 2>&1 &
bench=$!
pids=
for _ in $(seq 1 50); do
	pids=$(psql "$FANOUT_PG_DSN" -Atc "select string_agg(pid::text, ',') from pg_stat_activity
		where application_name like 'fanout writer%'")
	[ -n "$pids" ] && break
	sleep 0.1
done
sleep 1
perf record -g -F 499 -p "$pids" -o "$out/writer.data" -- sleep 5
copy=
for _ in $(seq 1 300); do
	copy=$(psql "$FANOUT_PG_DSN" -Atc "select pid from pg_stat_activity
		where query like 'COPY bench_copy%' and state = 'active'")
	[ -n "$copy" ] && break
	sleep 0.1
done
perf record -g -F 499 -p "$copy" -o "$out/copy.data" -- sleep 1.5
wait "$bench"
for f in writer copy; do
	perf report -i "$out/$f.data" --children --sort sym --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+% +[0-9.]+% ' | head -60 >"$out/profile-$f.txt"
	rm -f "$out/$f.data"
done
