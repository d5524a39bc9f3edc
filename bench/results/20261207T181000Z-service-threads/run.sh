#!/usr/bin/env bash
# fanoutd with 1 and with 2 service threads, alternated ROUNDS times on the
# bench PostgreSQL (var/bench-pg, 55434), durable and ephemeral. From the
# repository root:
#   run.sh w2 ROUNDS OUTDIR   W2 (1,000 users, 2,000 msg/s, 12 s): fanoutd's
#                             CPU-seconds over 5 s in the middle of the run,
#                             its voluntary context switches then, latency
#   run.sh w1 ROUNDS OUTDIR   W1 (one channel) at 20,000 and 1,000,000
#                             deliveries/s, 8 s each: fanoutd's CPU over the
#                             run, per delivery, and the latency
set -uo pipefail
what=$1 rounds=$2 out=$3
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
switches() { # voluntary context switches of all the process's threads
    local s=0 n
    for t in /proc/"$1"/task/*; do
        n=$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status" 2>/dev/null || echo 0)
        s=$((s + ${n:-0}))
    done
    echo $s
}
start_fanoutd() { # threads: sets fpid
    printf '[server]\nport = 18090\nservice_threads = %s\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[log]\nlevel = warn\n' \
        "$1" >"$out/fanout-$1.ini"
    build/apps/fanoutd -c "$out/fanout-$1.ini" >>"$out/fanoutd.log" 2>&1 &
    fpid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
}
stop_fanoutd() { kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 3; }

w2() { # round threads mode
    local r=$1 threads=$2 mode=$3 extra=() j f0 f1 s0 s1 bpid
    [ "$mode" = ephemeral ] && extra=(--ephemeral)
    start_fanoutd "$threads"
    j=$out/$r-$threads-$mode.json
    build/bench/fanout-bench groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
        "${extra[@]}" --json "$j" >"${j%.json}.txt" 2>&1 &
    bpid=$!
    sleep 4
    f0=$(cpu "$fpid"); s0=$(switches "$fpid"); sleep 5; f1=$(cpu "$fpid"); s1=$(switches "$fpid")
    wait "$bpid"
    stop_fanoutd
    python3 - "$j" "$r" "$threads" "$mode" "$f0" "$f1" "$s0" "$s1" <<'PY'
import json, sys
j, r, threads, mode, f0, f1, s0, s1 = sys.argv[1:]
d = json.load(open(j))["latency_ms"]
print(r, threads, mode, "%.2f" % ((int(f1) - int(f0)) / 100), int(s1) - int(s0),
      "%.2f" % d["p50"], "%.2f" % d["p99"], "%.2f" % d["p999"])
PY
}

w1() { # round threads: both loads, both modes, on one fanoutd
    local r=$1 threads=$2 load mode extra t c0 c1
    start_fanoutd "$threads"
    for load in 100x200 1000x1000; do
        for mode in durable ephemeral; do
            extra=(); [ "$mode" = ephemeral ] && extra=(--ephemeral)
            t=$out/$r-$threads-$load-$mode.txt
            c0=$(cpu "$fpid")
            build/bench/fanout-bench fanout --port 18090 --subscribers "${load%x*}" \
                --rate "${load#*x}" --seconds 8 "${extra[@]}" >"$t" 2>&1
            c1=$(cpu "$fpid")
            python3 - "$t" "$r" "$threads" "$load" "$mode" "$c0" "$c1" <<'PY'
import re, sys
t, r, threads, load, mode, c0, c1 = sys.argv[1:]
s = open(t).read()
d = re.search(r"(?m)^deliveries (\d+) in ([\d.]+) s", s)
lat = re.search(r"latency from due time:.*?p50 ([\d.]+).*?p99 ([\d.]+)", s, re.S)
cpu = (int(c1) - int(c0)) / 100
n, secs = int(d.group(1)), float(d.group(2))
print(r, threads, load, mode, round(n / secs), "%.2f" % cpu, "%.2f" % (cpu * 1e6 / n),
      lat.group(1), lat.group(2))
PY
            sleep 2
        done
    done
    stop_fanoutd
}

if [ "$what" = w2 ]; then
    echo "round threads mode fanoutd_cpu_s switches_5s p50_ms p99_ms p999_ms" >"$out/table.txt"
    for r in $(seq "$rounds"); do
        for threads in 1 2; do
            for mode in durable ephemeral; do w2 "$r" "$threads" "$mode" >>"$out/table.txt"; done
        done
    done
else
    echo "round threads load mode deliveries_s fanoutd_cpu_s us_per_delivery p50_ms p99_ms" >"$out/table.txt"
    for r in $(seq "$rounds"); do
        for threads in 1 2; do w1 "$r" "$threads" >>"$out/table.txt"; done
    done
fi
column -t "$out/table.txt"
