#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Tests of deploy/pgctl, the private PostgreSQL of the quickstart, the tests
# and deploy/cluster: it starts a data directory on the port asked for, even
# one initdb made for another port, and refuses a start without a port.
# Prints "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. tests/integration/checks.sh
not() { ! "$@"; }
dir=var/test-pgctl
first=${FANOUT_TEST_PGCTL_PORT:-25435}
second=$((first + 1))
cleanup() {
    deploy/pgctl stop "$dir" >/dev/null 2>&1
    rm -rf "$(deploy/pgctl datadir "$dir")" "$dir"
}
trap cleanup EXIT
cleanup
port_of() { # the port a server on $1 says it listens on
    timeout 10 /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$1" -U fanout -d fanout -qtAX -c "SHOW port" 2>/dev/null
}

check "start initialises and serves on the first port" deploy/pgctl start "$dir" "$first"
check "it answers there" test "$(port_of "$first")" = "$first"
deploy/pgctl stop "$dir"
check "a restart on another port serves there" deploy/pgctl start "$dir" "$second"
check "it answers on the second port" test "$(port_of "$second")" = "$second"
check "nothing answers on the first" not port_of "$first"
deploy/pgctl stop "$dir"
out=$(deploy/pgctl start "$dir" 2>&1); rc=$?
check "start without a port fails" test "$rc" != 0
check "and says why" contains "$out" "pgctl start needs a PORT"
checks_done pgctl
