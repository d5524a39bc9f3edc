#!/usr/bin/env bash
# shellcheck disable=SC2154  # here, fpid, bpid: set by common.sh
# What fanout's PostgreSQL backends wait on during W2 durable: 400 samples
# of pg_stat_activity, one after the other, over about 5 s. From the
# repository root:  waits.sh [WRITERS]
set -uo pipefail
source "$(dirname "$0")/common.sh"
write_ini "$here/fanout.ini" "${1:-2}"
start_fanoutd build/apps/fanoutd "$here/fanout.ini"
start_w2 "$here/waits.json"
sleep 4
q="select application_name, state, coalesce(wait_event_type,'-') || ':' || coalesce(wait_event,'-')
   from pg_stat_activity where application_name like 'fanout writer%'"
for _ in $(seq 400); do printf '%s;\n' "$q"; done | psql -X -At -F ' ' "$ADMIN" | sort | uniq -c | sort -rn
wait "$bpid"
stop_fanoutd
grep -o '"p99": [0-9.]*' "$here/waits.json"
