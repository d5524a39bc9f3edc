# SPDX-License-Identifier: BSD-3-Clause
# cluster-lib.sh: what bench/failover and bench/cluster-hop share: a private
# etcd and PostgreSQL under $state, and fanoutd nodes n1.. on loopback
# (HTTP 8090+i, peer link 7200+i). Sourced, not run. Needs: root, state,
# etcd_port, pg_port set by the caller.
bin=$root/build/apps/fanoutd ctl=$root/build/controlplane/fanoutctl bench=$root/build/bench/fanout-bench
for b in "$bin" "$ctl" "$bench"; do
    [ -x "$b" ] || { echo "$(basename "$0"): build first (deploy/build build)" >&2; exit 2; }
done
export FANOUT_JWT_SECRET=bench-cluster-secret FANOUT_CLUSTER_SECRET=bench-cluster-peer-secret
export FANOUT_PG_DSN="host=127.0.0.1 port=$pg_port dbname=fanout user=fanout"
etcd_url=http://127.0.0.1:$etcd_port
declare -A pids

# The nodes are disowned (a SIGKILL is the point of the failover benchmark,
# not news for the terminal), so they are waited for by polling.
wait_gone() {
    for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
}

stop_all() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait_gone "$p"; done
    deploy/pgctl stop "$state/pg" >/dev/null || true
    deploy/etcd stop "$state/etcd" >/dev/null || true
}

start_stack() {
    mkdir -p "$state"
    rm -rf "$state/etcd"
    deploy/etcd start "$state/etcd" "$etcd_port" >/dev/null
    deploy/pgctl start "$state/pg" "$pg_port" >/dev/null
    "$bin" --migrate >/dev/null
}

# start_node I [alone]: node nI (alone: without [cluster]), until ready.
start_node() {
    local i=$1 alone=${2:-}
    {
        printf '[server]\nport = %d\npublish_rate = 100000\npublish_burst = 100000\n' $((8090 + i))
        printf '[dataplane]\nchannels = 65536\n[log]\nformat = text\nlevel = warn\n'
        [ -n "$alone" ] || printf '[cluster]\netcd = %s\nname = n%d\npeer = 127.0.0.1:%d\nadmin = 127.0.0.1:%d\n' \
            "$etcd_url" "$i" $((7200 + i)) $((8090 + i))
    } >"$state/n$i.ini"
    for _ in $(seq 1 50); do
        "$bin" -c "$state/n$i.ini" >>"$state/n$i.log" 2>&1 &
        pids[$i]=$!
        disown "${pids[$i]}"
        for _ in $(seq 1 100); do
            curl -sf "http://127.0.0.1:$((8090 + i))/readyz" >/dev/null 2>&1 && return 0
            kill -0 "${pids[$i]}" 2>/dev/null || break
            sleep 0.05
        done
        sleep 0.2 # its old key may outlive it by a lease: try again
    done
    echo "$(basename "$0"): node n$i does not start (log: $state/n$i.log)" >&2
    exit 1
}

members() {
    "$ctl" node list --endpoints "$etcd_url" -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# settle N: until etcd lists N members, then a moment for the peer links.
settle() {
    for _ in $(seq 1 200); do
        [ "$(members)" = "$1" ] && { sleep 0.5; return 0; }
        sleep 0.05
    done
    echo "$(basename "$0"): the cluster did not settle at $1 members" >&2
    return 1
}

# owner_of CHANNEL: the index i of the node nI that owns it.
owner_of() {
    "$ctl" channel locate "$1" --endpoints "$etcd_url" -o json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["owner"][1:])'
}
