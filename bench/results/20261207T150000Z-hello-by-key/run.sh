#!/usr/bin/env bash
# The hello's query of a user's channels (persist/store.c, CHANNELS_SQL) as
# it was (ed489e2, a plain join) and as it is (a LATERAL lookup by key),
# each prepared with a generic plan as fanoutd's connections do, on a
# database of its own with CHANNELS channels, before and after ANALYZE.
# Prints each one's execution times for a user in two channels and for one
# in every channel, and whether the plan reads channels whole. From the
# repository root, with the test PostgreSQL running (deploy/pgctl start
# var/test-pg 25433):
#   run.sh [CHANNELS] [PORT]      (KEEP=1: leave the database there after)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
channels=${1:-2000} port=${2:-25433}
db=hello_by_key
admin="host=127.0.0.1 port=$port dbname=postgres user=postgres"
dsn="host=127.0.0.1 port=$port dbname=$db user=fanout"
sql_of() { # the statement's text in store.c as given on stdin
    python3 -c '
import re, sys
s = sys.stdin.read()
m = re.search(r"#define CHANNELS_SQL(.*?)\n\n", s, re.S)
print("".join(re.findall(r"\"((?:[^\"\\\\]|\\\\.)*)\"", m.group(1))))'
}
old=$(git show ed489e2:persist/store.c | sql_of)
new=$(sql_of < persist/store.c)
psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db OWNER fanout"
# fanoutd applies the migrations as it starts; stopped once ready.
ini=$(mktemp)
trap 'rm -f "$ini"' EXIT
printf '[server]\nport = 18097\n[postgres]\ndsn = %s\n[log]\nlevel = warn\n' "$dsn" >"$ini"
FANOUT_JWT_SECRET=x build/apps/fanoutd -c "$ini" &
fpid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18097/readyz >/dev/null && break; sleep 0.2; done
kill "$fpid"; wait "$fpid" 2>/dev/null || true
psql -X -q "$dsn" <<SQL
ALTER TABLE channels SET (autovacuum_enabled = off);
ALTER TABLE channel_members SET (autovacuum_enabled = off);
ALTER TABLE users SET (autovacuum_enabled = off);
INSERT INTO users (name) SELECT 'hk-' || g FROM generate_series(1, 500) g;
INSERT INTO channels (name, kind) SELECT 'hk-' || g, 'public' FROM generate_series(1, $channels) g;
INSERT INTO channel_members (channel_id, user_id)
  SELECT c.id, u.id FROM users u JOIN channels c ON c.id IN (u.id, u.id + 500) WHERE u.name LIKE 'hk-%';
INSERT INTO users (name) VALUES ('hk-everywhere');
INSERT INTO channel_members (channel_id, user_id)
  SELECT c.id, u.id FROM channels c, users u WHERE u.name = 'hk-everywhere';
SQL
two=$(psql -X -At "$dsn" -c "SELECT id FROM users WHERE name = 'hk-7'")
all=$(psql -X -At "$dsn" -c "SELECT id FROM users WHERE name = 'hk-everywhere'")
for phase in "not analyzed" analyzed; do
    [ "$phase" = analyzed ] && psql -X -q "$dsn" -c "ANALYZE users; ANALYZE channels; ANALYZE channel_members"
    for which in old new; do
        text=$old; [ $which = new ] && text=$new
        out=$(psql -X -q -At "$dsn" <<SQL
SET plan_cache_mode = force_generic_plan;
PREPARE q(int8) AS $text;
EXPLAIN ANALYZE EXECUTE q($two);
EXPLAIN ANALYZE EXECUTE q($two);
EXPLAIN ANALYZE EXECUTE q($two);
EXPLAIN ANALYZE EXECUTE q($two);
EXPLAIN ANALYZE EXECUTE q($two);
EXPLAIN ANALYZE EXECUTE q($all);
EXPLAIN ANALYZE EXECUTE q($all);
EXPLAIN ANALYZE EXECUTE q($all);
SQL
        )
        times=$(grep "Execution Time" <<<"$out" | awk '{printf "%s ", $3}')
        scans=$(grep -c "Seq Scan on channels" <<<"$out" || true)
        printf '%s channels, %s, %s: two channels (5 runs) and every channel (3 runs), ms: %s; plans reading channels whole: %s of 8\n' \
            "$channels" "$phase" "$which" "$times" "$scans"
    done
done
[ -n "${KEEP:-}" ] || psql -X -q "$admin" -c "DROP DATABASE $db WITH (FORCE)"
