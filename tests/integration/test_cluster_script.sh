#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The README's cluster command, deploy/cluster, really starts a cluster: its
# etcd, its PostgreSQL and three nodes come up, fanoutctl sees three ready
# members, and Ctrl-C (SIGINT) stops everything. Prints "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ctl=$1
cd "$root"
. tests/integration/checks.sh
log=$(mktemp)
setsid deploy/cluster --no-build >"$log" 2>&1 &
pid=$!
cleanup() { kill -INT -- -"$pid" 2>/dev/null; sleep 2; kill -KILL -- -"$pid" 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT
# Bounded in time as well as count: one status call waits up to 2 s per node
# that accepts and does not answer. On a failure it shows why: the script's
# output, each node's log and what fanoutctl sees.
ready() {
    local deadline=$((SECONDS + 60))
    for _ in $(seq 1 300); do
        [ "$SECONDS" -lt "$deadline" ] || break
        out=$(timeout 10 "$ctl" cluster status --endpoints http://127.0.0.1:23795 -o json 2>/dev/null) &&
            [ "$(python3 -c 'import json,sys; print(sum(n["ready"] == "ready" for n in json.load(sys.stdin)["nodes"]))' <<<"$out")" = 3 ] &&
            return 0
        sleep 0.1
    done
    echo "not ready after $SECONDS s; deploy/cluster said:" >&2
    cat "$log" >&2
    for n in var/cluster/n*.log; do echo "--- $n (last lines)" >&2; tail -n 20 "$n" >&2; done
    timeout 10 "$ctl" cluster status --endpoints http://127.0.0.1:23795 >&2
    return 1
}
check "three nodes ready within 60 s" ready
check "it prints where each node listens" grep -q "n3  web client and API http://127.0.0.1:8083/" "$log"
# A port in the kernel's ephemeral range can be held by a loopback client
# (or its TIME_WAIT) when the server binds: the servers start below it.
below_ephemeral() {
    local low ports
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range
    ports=$(grep -oE "(etcd: running|PostgreSQL running) on 127\.0\.0\.1:[0-9]+" "$log" | grep -oE "[0-9]+$")
    [ "$(wc -w <<<"$ports")" = 2 ] || return 1
    for p in $ports; do [ "$p" -lt "$low" ] || return 1; done
}
check "its etcd and PostgreSQL listen below the ephemeral ports" below_ephemeral
check "the web client is served by a node" curl -sf -m 5 -o /dev/null http://127.0.0.1:8082/
kill -INT -- -"$pid"
for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
gone() { ! kill -0 "$pid" 2>/dev/null && ! curl -sf -m 5 -o /dev/null http://127.0.0.1:8081/healthz; }
check "Ctrl-C stops every node" gone
checks_done cluster-script
