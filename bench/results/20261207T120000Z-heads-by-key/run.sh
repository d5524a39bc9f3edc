#!/usr/bin/env bash
# The heads found by key (B: build/) against the statements before (A: a
# fanoutd built from the commit before), alternated round by round, every
# run from the same database: a PostgreSQL of its own (var/hk-pg on 25443,
# started fresh), two W2 runs made into a template (1,201 channels: W2 makes
# 600 per run, a group per ten users and a DM per two), and before each run
# the database made again from it, so that each run has the 1,801 channels
# of a small team's workspace while it loads (first-try/ did without, and
# its database grew out of that size after one round). Per run: W2
# (fanout-bench groups, 1,000 users, 2,000 msg/s, 8 s); the CPU-seconds of
# the writer lanes' and the indexer's backends over 4 s in its middle
# (/proc, by application_name); the sequential scans of channels,
# search_heads and the messages partitions over the run and the rows they
# read (pg_stat_user_tables). STATS "analyzed" runs ANALYZE on the template
# first, as autovacuum would have within a minute or two; "fresh" leaves it
# as just written (a database created or restored a moment ago).
#   run.sh A_FANOUTD [ROUNDS] [analyzed|fresh]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
abin=$1
rounds=${2:-3}
stats=${3:-analyzed}
export FANOUT_JWT_SECRET=bench-secret
out=$here/$stats
mkdir -p "$out"
dsn="host=127.0.0.1 port=25443 dbname=fanout user=fanout"
su="host=127.0.0.1 port=25443 dbname=postgres user=postgres"
sudb="host=127.0.0.1 port=25443 dbname=fanout user=postgres"
deploy/pgctl stop var/hk-pg >/dev/null 2>&1 || true
rm -rf var/hk-pg
deploy/pgctl start var/hk-pg 25443 >/dev/null
trap 'deploy/pgctl stop var/hk-pg >/dev/null 2>&1 || true' EXIT
ini=$out/fanout.ini
printf '[server]\nport = 18090\nservice_threads = 2\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = %s\n[log]\nlevel = warn\n' "$dsn" >"$ini"
start() {
    "$1" -c "$ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
    curl -sf http://127.0.0.1:18090/readyz >/dev/null || { echo "fanoutd ($1) is not ready" >&2; exit 1; }
}
start build/apps/fanoutd
for _ in 1 2; do build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 2 >/dev/null; done
kill "$fpid"; wait "$fpid" 2>/dev/null || true
[ "$stats" = analyzed ] && psql -X -q "$sudb" -c "ANALYZE"
psql -X -q "$su" -c "CREATE DATABASE fanout_tpl TEMPLATE fanout"
echo "template: $(psql -X -At "$sudb" -c 'select count(*) from channels') channels" | tee "$out/template.txt"
snap() { for p in $(pgrep -x postgres); do awk -v p="$p" '{print p, $14+$15}' "/proc/$p/stat" 2>/dev/null || true; done | sort; }
scans() { psql -X -At "$sudb" -c "select coalesce(sum(seq_scan), 0), coalesce(sum(seq_tup_read), 0) from pg_stat_user_tables where relname in ('channels', 'search_heads') or relname like 'messages_p%'" | tr '|' ' '; }
cpu_of() { join "$1" "$2" | awk '{print $1, ($3 - $2) / 100}' | join - "$3" | awk -v pat="$4" '$0 ~ pat {s += $2} END {printf "%.2f", s}'; }
{
echo "| round | side | W2 p50 ms | W2 p99 ms | writers CPU s (4 s) | indexer CPU s (4 s) | seq scans of channels, search_heads, messages | rows they read |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for r in $(seq "$rounds"); do
    sides="A B"; [ $((r % 2)) = 1 ] || sides="B A"
    for s in $sides; do
        psql -X -q "$su" -c "DROP DATABASE fanout WITH (FORCE)" -c "CREATE DATABASE fanout TEMPLATE fanout_tpl OWNER fanout" -c CHECKPOINT
        bin=build/apps/fanoutd; [ "$s" = A ] && bin=$abin
        start "$bin"
        sync; sleep 2
        read -r sc0 tr0 < <(scans)
        f=$out/w2-$s-$r.txt
        build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 8 >"$f" 2>&1 &
        bp=$!
        sleep 4; snap >"$f.before"; sleep 4; snap >"$f.after"
        psql -X -At "$sudb" -c "select pid, replace(application_name, ' ', '_') from pg_stat_activity where application_name like 'fanout %'" |
            tr '|' ' ' | sort >"$f.names"
        wait $bp
        sleep 2 # the backends' statistics reach the shared counters within a second or so
        read -r sc1 tr1 < <(scans)
        wr=$(cpu_of "$f.before" "$f.after" "$f.names" writer)
        ix=$(cpu_of "$f.before" "$f.after" "$f.names" indexer)
        w2=$(awk '/^latency from due time/ {print $6, $12}' "$f" | tail -1)
        kill "$fpid"; wait "$fpid" 2>/dev/null || true
        echo "| $r | $s | ${w2% *} | ${w2#* } | $wr | $ix | $((sc1 - sc0)) | $((tr1 - tr0)) |"
    done
done
} | tee "$out/table.txt"
