#!/usr/bin/env bash
# shellcheck disable=SC2154  # here, fpid, bpid: set by common.sh
# PostgreSQL's WAL flushes over 5 s in the middle of W2 durable, from
# pg_stat_wal with track_wal_io_timing on for the run (reset after), and
# the disk's fdatasync alone (pg_test_fsync, 2 s a test). From the
# repository root:  wal.sh
set -uo pipefail
source "$(dirname "$0")/common.sh"
write_ini "$here/fanout.ini" 2
psql -X -q "$ADMIN" -c "ALTER SYSTEM SET track_wal_io_timing = on" -c "SELECT pg_reload_conf()" >/dev/null
start_fanoutd build/apps/fanoutd "$here/fanout.ini"
start_w2 "$here/wal.json"
sleep 4
q="select wal_write, wal_sync, wal_write_time, wal_sync_time from pg_stat_wal"
read -r w0 s0 wt0 st0 < <(psql -X -At -F ' ' "$ADMIN" -c "$q")
sleep 5
read -r w1 s1 wt1 st1 < <(psql -X -At -F ' ' "$ADMIN" -c "$q")
wait "$bpid"
stop_fanoutd
psql -X -q "$ADMIN" -c "ALTER SYSTEM RESET track_wal_io_timing" -c "SELECT pg_reload_conf()" >/dev/null
python3 - "$w0" "$s0" "$wt0" "$st0" "$w1" "$s1" "$wt1" "$st1" <<'PY'
import sys
w0, s0, wt0, st0, w1, s1, wt1, st1 = map(float, sys.argv[1:])
print("over 5 s of W2: %d WAL writes (%.1f us each), %d flushes (%.1f us each), %.2f s flushing"
      % (w1 - w0, (wt1 - wt0) * 1000 / max(w1 - w0, 1), s1 - s0, (st1 - st0) * 1000 / max(s1 - s0, 1),
         (st1 - st0) / 1000))
PY
grep -o '"p99": [0-9.]*' "$here/wal.json"
tmp=var/bench-pg/pg_test_fsync.tmp
su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/pg_test_fsync -s 2 -f $PWD/$tmp" | sed -n '/one 8kB write/,/^$/p'
rm -f "$tmp"
