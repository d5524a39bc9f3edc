# Sourced by the scripts here: a fanoutd on the bench PostgreSQL
# shellcheck shell=bash disable=SC2034
# (var/bench-pg, 55434) and W2 (1,000 users, 2,000 msg/s, 12 s) against it.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../../.." || exit 1
export FANOUT_JWT_SECRET=bench-secret
deploy/pgctl start var/bench-pg 55434 >/dev/null
ADMIN="host=127.0.0.1 port=55434 dbname=fanout user=postgres"
# write_ini FILE WRITERS
write_ini() {
    printf '[server]\nport = 18090\nservice_threads = 2\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[persist]\nwriters = %s\n[log]\nlevel = warn\n' "$2" >"$1"
}
# start_fanoutd BIN INI: sets fpid
start_fanoutd() {
    "$1" -c "$2" >>"$here/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
}
stop_fanoutd() { kill "$fpid"; wait "$fpid" 2>/dev/null || true; sleep 3; }
# start_w2 JSON [--ephemeral]: sets bpid
start_w2() {
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 "${@:2}" \
        --json "$1" >"${1%.json}.txt" 2>&1 &
    bpid=$!
}
# cpu PID...: user+system ticks of the processes, summed
cpu() { local s=0; for p in "$@"; do s=$((s + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $s; }
