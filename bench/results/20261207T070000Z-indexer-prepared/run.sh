#!/usr/bin/env bash
# The search indexer's statement planned at every round (BEFORE: a
# fanoutd built from the commit before) against prepared once (AFTER:
# build/apps/fanoutd), alternated: W1 100 subscribers at 20, 200 and 1,000
# msg/s for 8 s, CPU-seconds of each PostgreSQL backend by
# application_name over the run (utime + stime from /proc), and the
# bench's latency. Needs the bench PostgreSQL (port 55434) up; fanoutd on
# port 18090 with publish_rate above the load. Usage: run.sh BEFORE_BIN
set -euo pipefail
cd "$(dirname "$0")/../../.."
before=$1
out=$(dirname "$0")
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
export FANOUT_JWT_SECRET=bench-secret
cat >"$out/fanout.ini" <<INI
[server]
listen_address = 127.0.0.1
port = 18090
service_threads = 2
publish_rate = 1000000
publish_burst = 1000000
[postgres]
dsn = $dsn
[log]
level = warn
INI
snap() { for p in $(pgrep -x postgres); do awk -v p=$p '{print p, $14+$15}' /proc/$p/stat 2>/dev/null; done | sort; }
echo "| round | fanoutd | load | indexer CPU s | writer CPU s | fanoutd's other connections CPU s | other PostgreSQL processes CPU s | p50 ms | p99 ms |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
for r in 1 2 3; do
    for which in before after; do
        bin=build/apps/fanoutd; [ $which = before ] && bin=$before
        "$bin" -c "$out/fanout.ini" >"$out/fanoutd-$which.log" 2>&1 &
        fpid=$!
        for _ in $(seq 50); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
        for rate in 20 200 1000; do
            f=$out/round$r-$which-100x$rate.txt
            snap >"$f.before"
            build/bench/fanout-bench fanout --port 18090 --subscribers 100 --rate $rate --seconds 8 >"$f" 2>&1
            snap >"$f.after"
            psql "$dsn" -Atc "select pid, application_name from pg_stat_activity where application_name like 'fanout %'" |
                tr '|' ' ' | sort >"$f.names"
            join "$f.before" "$f.after" | awk '{print $1, ($3 - $2) / 100}' |
                join -a1 - "$f.names" >"$f.cpu"
            awk -v r=$r -v w=$which -v l=100x$rate -v cpu="$f.cpu" '
                BEGIN { while ((getline line < cpu) > 0) { split(line, a, " ");
                        if (line ~ /indexer/) ix += a[2]; else if (line ~ /writer/) wr += a[2]; else if (line ~ /fanout/) fd += a[2]; else other += a[2] } }
                /latency from due time/ { p50 = $6; p99 = $12 }
                END { printf "| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %s | %s |\n", r, w, l, ix, wr, fd, other, p50, p99 }' "$f"
        done
        kill $fpid; wait $fpid 2>/dev/null || true
    done
done
