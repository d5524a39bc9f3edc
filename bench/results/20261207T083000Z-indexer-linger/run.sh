#!/usr/bin/env bash
# The search indexer with a round per pending note (BEFORE: fanoutd built
# from the commit before) against notes gathered for 20 ms (AFTER:
# build/apps/fanoutd), alternated: W2 (fanout-bench groups, 1,000 users,
# 2,000 msg/s, 8 s), CPU-seconds of each fanout backend over 4 s in the
# middle of the run (/proc, by application_name), the indexer's rounds and
# rows over 2 s of it (/metrics), the bench's latency. Bench PostgreSQL on
# port 55434. From the repository root: run.sh BEFORE_BIN
set -euo pipefail
cd "$(dirname "$0")/../../.."
before=$1
out=$(dirname "$0")
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
export FANOUT_JWT_SECRET=bench-secret
snap() { for p in $(pgrep -x postgres); do awk -v p=$p '{print p, $14+$15}' /proc/$p/stat 2>/dev/null; done | sort; }
metric() { curl -s http://127.0.0.1:18090/metrics | awk -v m=$1 '$1 == m { print $2 }'; }
echo "| round | fanoutd | indexer CPU s | writers CPU s | rounds/s | rows/s | p50 ms | p99 ms |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for r in 1 2; do
    for which in before after; do
        bin=build/apps/fanoutd; [ $which = before ] && bin=$before
        "$bin" -c "$out/fanout.ini" >"$out/fanoutd-$which.log" 2>&1 &
        fpid=$!
        for _ in $(seq 50); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
        f=$out/round$r-$which.txt
        build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 8 >"$f" 2>&1 &
        bp=$!
        sleep 4; snap >"$f.before"
        r1=$(metric fanout_search_index_rounds_total) i1=$(metric fanout_search_indexed_total)
        sleep 2
        r2=$(metric fanout_search_index_rounds_total) i2=$(metric fanout_search_indexed_total)
        sleep 2; snap >"$f.after"
        psql "$dsn" -Atc "select pid, application_name from pg_stat_activity where application_name like 'fanout %'" |
            tr '|' ' ' | sort >"$f.names"
        wait $bp
        kill $fpid; wait $fpid 2>/dev/null || true
        join "$f.before" "$f.after" | awk '{print $1, ($3 - $2) / 100}' | join - "$f.names" >"$f.cpu"
        ix=$(awk '/indexer/ {s += $2} END {print s}' "$f.cpu")
        wr=$(awk '/writer/ {s += $2} END {print s}' "$f.cpu")
        lat=$(awk '/^latency from due time/ {print $6, $12}' "$f" | tail -1)
        echo "| $r | $which | $ix | $wr | $(((r2 - r1) / 2)) | $(((i2 - i1) / 2)) | ${lat% *} | ${lat#* } |"
    done
done
