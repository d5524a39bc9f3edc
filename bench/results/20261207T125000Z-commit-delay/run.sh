#!/usr/bin/env bash
# PostgreSQL's group commit asked for: commit_delay (us) with
# commit_siblings = 1, against the default (0), on W2 through one fanoutd
# (build/), alternated round by round, every run from the template database
# that ../20261207T120000Z-heads-by-key/run.sh leaves on var/hk-pg (run it
# first; this script starts that PostgreSQL again and analyzes the copy).
# Per run: W2 for 8 s; the writer lanes' backends' CPU over 4 s in its
# middle; WAL syncs and commits over the run (pg_stat_wal,
# pg_stat_database).
#   run.sh [ROUNDS] [DELAY_US]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
rounds=${1:-3}
delay=${2:-100}
export FANOUT_JWT_SECRET=bench-secret
dsn="host=127.0.0.1 port=25443 dbname=fanout user=fanout"
su="host=127.0.0.1 port=25443 dbname=postgres user=postgres"
sudb="host=127.0.0.1 port=25443 dbname=fanout user=postgres"
deploy/pgctl start var/hk-pg 25443 >/dev/null
trap 'psql -X -q "$su" -c "ALTER SYSTEM RESET commit_delay" -c "ALTER SYSTEM RESET commit_siblings" -c "SELECT pg_reload_conf()" >/dev/null; deploy/pgctl stop var/hk-pg >/dev/null 2>&1 || true' EXIT
ini=$here/fanout.ini
printf '[server]\nport = 18090\nservice_threads = 2\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = %s\n[log]\nlevel = warn\n' "$dsn" >"$ini"
snap() { for p in $(pgrep -x postgres); do awk -v p="$p" '{print p, $14+$15}' "/proc/$p/stat" 2>/dev/null || true; done | sort; }
wal() { psql -X -At "$su" -c "select wal_sync, (select xact_commit from pg_stat_database where datname = 'fanout') from pg_stat_wal" | tr '|' ' '; }
{
echo "| round | commit_delay us | W2 p50 ms | W2 p99 ms | writers CPU s (4 s) | WAL syncs | commits |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for r in $(seq "$rounds"); do
    sides="0 $delay"; [ $((r % 2)) = 1 ] || sides="$delay 0"
    for s in $sides; do
        psql -X -q "$su" -c "DROP DATABASE fanout WITH (FORCE)" -c "CREATE DATABASE fanout TEMPLATE fanout_tpl OWNER fanout"
        psql -X -q "$sudb" -c ANALYZE
        psql -X -q "$su" -c "ALTER SYSTEM SET commit_delay = $s" -c "ALTER SYSTEM SET commit_siblings = 1" -c "SELECT pg_reload_conf()" -c CHECKPOINT >/dev/null
        build/apps/fanoutd -c "$ini" >>"$here/fanoutd.log" 2>&1 &
        fpid=$!
        for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
        sync; sleep 2
        read -r ws0 c0 < <(wal)
        f=$here/w2-$s-$r.txt
        build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 8 >"$f" 2>&1 &
        bp=$!
        sleep 4; snap >"$f.before"; sleep 4; snap >"$f.after"
        psql -X -At "$sudb" -c "select pid, replace(application_name, ' ', '_') from pg_stat_activity where application_name like 'fanout writer%'" |
            tr '|' ' ' | sort >"$f.names"
        wait $bp
        sleep 2
        read -r ws1 c1 < <(wal)
        wr=$(join "$f.before" "$f.after" | awk '{print $1, ($3 - $2) / 100}' | join - "$f.names" | awk '{s += $2} END {printf "%.2f", s}')
        w2=$(awk '/^latency from due time/ {print $6, $12}' "$f" | tail -1)
        kill "$fpid"; wait "$fpid" 2>/dev/null || true
        echo "| $r | $s | ${w2% *} | ${w2#* } | $wr | $((ws1 - ws0)) | $((c1 - c0)) |"
    done
done
} | tee "$here/table.txt"
