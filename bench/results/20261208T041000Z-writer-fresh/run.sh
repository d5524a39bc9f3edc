#!/bin/bash
# The writer against one COPY (fanout-bench persist, two lanes) on the bench
# PostgreSQL (millions of rows in messages, from earlier runs) and on a
# cluster made fresh for the run (messages empty, as the COPY's scratch table
# starts), alternated. Usage: run.sh ROUNDS OUT
set -eu
cd "$(dirname "$0")/../../.."
rounds=${1:-3} out=${2:-out}
dir=$(dirname "$0")/$out
mkdir -p "$dir"
bench_dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
fresh=var/fresh-pg-$$
fresh_dsn="host=127.0.0.1 port=55441 dbname=fanout user=fanout"
trap 'deploy/pgctl stop "$fresh" >/dev/null 2>&1 || true; rm -rf "$fresh"' EXIT
for r in $(seq 1 "$rounds"); do
	FANOUT_PG_DSN=$bench_dsn build/bench/fanout-bench persist --writers 2 \
		--json "$dir/bench-$r.json" > "$dir/bench-$r.txt" 2>&1
	deploy/pgctl start "$fresh" 55441 >/dev/null
	FANOUT_PG_DSN=$fresh_dsn build/bench/fanout-bench persist --writers 2 \
		--json "$dir/fresh-$r.json" > "$dir/fresh-$r.txt" 2>&1
	deploy/pgctl stop "$fresh" >/dev/null
	rm -rf "$fresh"
	for f in bench fresh; do
		printf '%s %s: ' "$r" "$f"
		grep -E "saturated|ceiling" "$dir/$f-$r.txt" | head -2 | tr -s ' ' | tr '\n' ' '
		echo
	done
done
