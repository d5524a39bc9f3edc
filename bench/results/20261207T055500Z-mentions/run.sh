#!/usr/bin/env bash
# The stored mentions column's function, 0010's (an ARRAY query PostgreSQL
# cannot inline) against 0015's (one inlined CASE, the query only for a body
# with an '@'), alternated on one PostgreSQL: `fanout-bench persist`
# saturated, its COPY ceiling (the scratch table computes the column too).
# Run from the repository root with the bench PostgreSQL (port 55434) up.
set -euo pipefail
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
out=$(dirname "$0")
old="CREATE OR REPLACE FUNCTION fanout_mentions(body text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN fanout_mentions_scan_0010(body)"
# 0010's function, under another name, so the column can call it again.
psql "$dsn" -qc "$(sed -n '/^CREATE FUNCTION/,/ORDER BY 1);/p' persist/migrations/0010_mentions.sql |
    sed 's/CREATE FUNCTION fanout_mentions(/CREATE OR REPLACE FUNCTION fanout_mentions_scan_0010(/')"
new=$(sed -n '/^CREATE OR REPLACE/,$p' persist/migrations/0015_mentions_fast_path.sql)
for r in 1 2 3; do
    for v in old new; do
        if [ $v = old ]; then psql "$dsn" -qc "$old"; else psql "$dsn" -qc "$new"; fi
        build/bench/fanout-bench persist --dsn "$dsn" --messages 200000 --naive-messages 100 \
            --rate 0 >"$out/round$r-$v.txt" 2>&1
        printf '| %s | %s | %s | %s |\n' "$r" "$v" \
            "$(awk '/^batched, saturated/ { print $(NF-4) }' "$out/round$r-$v.txt")" \
            "$(awk '/^ceiling:/ { for (i = 1; i <= NF; i++) if ($i == "rows/s") print $(i-1) }' "$out/round$r-$v.txt")"
    done
done | tee "$out/table.md"
psql "$dsn" -qc "$new" -c "DROP FUNCTION fanout_mentions_scan_0010(text)"
