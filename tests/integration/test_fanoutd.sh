#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Integration test of the fanoutd binary against the real PostgreSQL that
# deploy/test started: configuration errors, the durability refusal,
# migrations, health, readiness (including losing the database), metrics, the
# web root, and a clean SIGTERM. Prints "N passed, N failed".
set -uo pipefail
fanoutd=$1
: "${FANOUT_TEST_PG_DSN:?set by deploy/test}" "${FANOUT_TEST_PG_PORT:?set by deploy/test}"
export FANOUT_JWT_SECRET=test-secret
psql_admin=(psql -h 127.0.0.1 -p "$FANOUT_TEST_PG_PORT" -U postgres -d postgres -qtAX)
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    "${psql_admin[@]}" -c "ALTER ROLE fanout LOGIN" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/checks.sh"

# Configuration errors: exit 2 with file and line.
printf '[server]\nport = 8080\nprot = 1\n' >"$work/bad.ini"
out=$("$fanoutd" -c "$work/bad.ini" --check-config 2>&1); rc=$?
check "unknown key exits 2" test "$rc" = 2
check "unknown key names file and line" contains "$out" "$work/bad.ini:3: unknown key 'prot' in section \[server\]"
out=$("$fanoutd" -c "$work/missing.ini" 2>&1); rc=$?
check "missing config exits 2" test "$rc" = 2
check "missing config says so" contains "$out" "cannot open"
out=$("$fanoutd" --bogus 2>&1); rc=$?
check "unknown flag exits 2 with usage" test "$rc" = 2
check "usage printed" contains "$out" "usage: fanoutd"
out=$("$fanoutd" --version); check "version names jemalloc" contains "$out" "jemalloc\|libc"
# the commit it was built from (when built in a git checkout, as here)
src=$(cd "$(dirname "$0")/../.." && pwd)
commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
check "version names the commit" contains "$out" "commit $commit"
check "version names DPDK" contains "$out" "DPDK 22.11"

out=$(env -u FANOUT_JWT_SECRET "$fanoutd" --check-config 2>&1); rc=$?
check "no token secret exits 2" test "$rc" = 2
check "no token secret says so" contains "$out" "no token secret"

# mode = dpdk without what it needs: exit 2, before any EAL or port work.
printf '[dataplane]\nmode = dpdk\nport = net_null0\naddress = 10.0.0.1\n' >"$work/dpdk.ini"
out=$(FANOUT_JWT_SECRET=x "$fanoutd" -c "$work/dpdk.ini" --check-config 2>&1); rc=$?
check "dpdk mode without a prefix length exits 2" test "$rc" = 2
check "dpdk mode says what it needs" contains "$out" "address (a.b.c.d/len)"
# On a port of its own: 8080 may be served (the quickstart), and fanoutd
# refuses a port another process listens on.
printf '[server]\nport = %s\n[dataplane]\nmode = dpdk\nport = nosuchport\naddress = 10.0.0.1/24\neal_args = --no-huge --no-pci --no-shconf -m 256\n' \
    "$(free_port)" >"$work/dpdk2.ini"
out=$(FANOUT_JWT_SECRET=x FANOUT_PG_DSN="$FANOUT_TEST_PG_DSN" timeout 60 "$fanoutd" -c "$work/dpdk2.ini" 2>&1); rc=$?
check "dpdk mode with no such port exits 1" test "$rc" = 1
check "dpdk mode names the missing port" contains "$out" "no port named 'nosuchport'"

# The durability refusal.
out=$(FANOUT_PG_DSN="$FANOUT_TEST_PG_DSN options='-c synchronous_commit=off'" "$fanoutd" --migrate 2>&1); rc=$?
check "non-durable commits refused" test "$rc" = 1
check "refusal explains itself" contains "$out" "allow_unsafe_commit"

# A DSN with no host that accepts writes (libpq judges a session with
# default_transaction_read_only as a standby's): refused at start, the key named.
out=$(FANOUT_PG_DSN="$FANOUT_TEST_PG_DSN target_session_attrs=read-write options='-c default_transaction_read_only=on'" "$fanoutd" --migrate 2>&1); rc=$?
check "a DSN with no writable host exits 1" test "$rc" = 1
check "it names the key and the reason" contains "$out" "\[postgres\] dsn.*no host of the DSN accepts writes"

# Migrations.
out=$(FANOUT_PG_DSN="$FANOUT_TEST_PG_DSN" "$fanoutd" --migrate 2>&1); rc=$?
check "--migrate exits 0" test "$rc" = 0
check "--migrate reports" contains "$out" "schema up to date"

# A running daemon.
port=$(free_port)
mkdir -p "$work/web"; echo '<title>probe-page</title>' >"$work/web/index.html"
printf '[server]\nport = %s\nweb_root = %s\n[log]\nformat = json\n' "$port" "$work/web" >"$work/ok.ini"
FANOUT_PG_DSN="$FANOUT_TEST_PG_DSN" "$fanoutd" -c "$work/ok.ini" 2>"$work/log" &
pid=$!
url=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -fs "$url/healthz" >/dev/null && break; sleep 0.1; done
check "healthz 200" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200
for _ in $(seq 1 50); do curl -fs "$url/readyz" >/dev/null && break; sleep 0.1; done
check "readyz 200 with PostgreSQL up" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200
metrics=$(curl -s "$url/metrics")
check "metrics has the persist queue" contains "$metrics" "^fanout_persist_queue_depth 0"
check "metrics has commit histogram" contains "$metrics" "^# TYPE fanout_persist_commit_seconds histogram"
check "metrics has the build" contains "$metrics" "^fanout_build_info{version=\"0.1.0\",commit=\"$commit\",dpdk=\"DPDK 22.11[^\"]*\",libpq=\"1[5-9]\.[0-9]*\",alloc=\"[^\"]*\"} 1$"
check "metrics content type" contains "$(curl -s -D - -o /dev/null "$url/metrics")" "text/plain; version=0.0.4"
check "HEAD answered without a body" contains "$(curl -sI "$url/healthz")" "^HTTP/1.1 200"
check "web root served at /" contains "$(curl -s "$url/")" "probe-page"
check "unknown path 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope.html")" = 404
# the web client's libraries, from their Debian packages, whatever the root
out=$(curl -s -D - "$url/vendor/markdown-it.js" | head -c 2000)
check "markdown-it served from its package" contains "$out" "markdownit"
check "as javascript" contains "$out" "content-type: text/javascript"
check "emoji names served" contains "$(curl -s "$url/vendor/emoji.json")" '"tada":"🎉"'
check "no other file under /vendor" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/vendor/markdown-it.min.js")" = 404
check "logs are JSON lines" contains "$(head -1 "$work/log")" '^{"ts":"'
# Its threads named for top -H and perf (docs/operations.md): the defaults'
# one service thread, two writer lanes and two readers.
names=$(cat /proc/"$pid"/task/*/comm)
for name in service-1 writer-lane-1 writer-lane-2 search-indexer pg-reader-1 pg-reader-2 presence; do
    check "a thread named $name" contains "$names" "^$name\$"
done
check "no second service thread" test "$(grep -c '^service-' <<<"$names")" = 1

# Losing the database: not ready, then ready again.
"${psql_admin[@]}" -c "ALTER ROLE fanout NOLOGIN" >/dev/null
"${psql_admin[@]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'fanout'" >/dev/null
code=
for _ in $(seq 1 50); do code=$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz"); [ "$code" = 503 ] && break; sleep 0.1; done
check "readyz 503 without PostgreSQL" test "$code" = 503
check "readyz says why" contains "$(curl -s "$url/readyz")" "PostgreSQL is unreachable"
"${psql_admin[@]}" -c "ALTER ROLE fanout LOGIN" >/dev/null
for _ in $(seq 1 100); do code=$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz"); [ "$code" = 200 ] && break; sleep 0.1; done
check "readyz 200 again after reconnect" test "$code" = 200

# SIGTERM: a clean exit 0.
kill -TERM "$pid"
rc=0; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; rc=$?; pid=
check "SIGTERM exits 0" test "$rc" = 0
check "shutdown logged" contains "$(cat "$work/log")" "SIGTERM: shutting down"

checks_done fanoutd
