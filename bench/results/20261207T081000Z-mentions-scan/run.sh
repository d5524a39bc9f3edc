#!/usr/bin/env bash
# fanout_mentions_scan as 0015 made it (SQL: PostgreSQL reads its query back
# at every statement, trying to inline it) against 0016 (PL/pgSQL: never
# tried), alternated three rounds on the bench PostgreSQL (port 55434):
# CPU-seconds of the writer's backends (by application_name, /proc) over
# 4 s in the middle of W1 100 x 200, W1 100 x 1,000 and W2 1,000 users x
# 2,000 msg/s, and the bench's p99. From the repository root.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=$(dirname "$0")
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
export FANOUT_JWT_SECRET=bench-secret
sqlv=$(sed -n '/^CREATE FUNCTION fanout_mentions_scan/,/ORDER BY 1);/p' \
    persist/migrations/0015_mentions_fast_path.sql | sed 's/CREATE FUNCTION/CREATE OR REPLACE FUNCTION/')
plv=$(sed -n '/^CREATE OR REPLACE/,$p' persist/migrations/0016_mentions_scan_plpgsql.sql)
build/apps/fanoutd -c "$out/fanout.ini" >"$out/fanoutd.log" 2>&1 &
fpid=$!
trap 'kill $fpid 2>/dev/null; psql "$dsn" -qc "$plv"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
snap() { for p in $(pgrep -x postgres); do awk -v p=$p '{print p, $14+$15}' /proc/$p/stat 2>/dev/null; done | sort; }
echo "| round | scan | load | writer CPU s (4 s) | p99 ms |"
echo "|---|---|---|---:|---:|"
for r in 1 2 3; do
    for v in sql plpgsql; do
        if [ $v = sql ]; then psql "$dsn" -qc "$sqlv"; else psql "$dsn" -qc "$plv"; fi
        for load in w1:100:200 w1:100:1000 w2:1000:2000; do
            IFS=: read -r kind n rate <<<"$load"
            f=$out/round$r-$v-$kind-${n}x$rate.txt
            if [ $kind = w1 ]; then
                build/bench/fanout-bench fanout --port 18090 --subscribers $n --rate $rate --seconds 8 >"$f" 2>&1 &
            else
                build/bench/fanout-bench groups --port 18090 --users $n --rate $rate --seconds 8 >"$f" 2>&1 &
            fi
            bp=$!
            sleep 4; snap >"$f.before"; sleep 4; snap >"$f.after"
            psql "$dsn" -Atc "select pid, application_name from pg_stat_activity where application_name like 'fanout writer%'" |
                tr '|' ' ' | sort >"$f.names"
            wait $bp
            cpu=$(join "$f.before" "$f.after" | awk '{print $1, ($3 - $2) / 100}' | join - "$f.names" | awk '{s += $2} END {print s}')
            p99=$(awk '/^latency from due time/ {print $12}' "$f" | tail -1)
            echo "| $r | $v | $kind ${n}x$rate | $cpu | $p99 |"
        done
    done
done
