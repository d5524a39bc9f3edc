#!/usr/bin/env bash
# W2 durable (1,000 users, 2,000 msg/s, 12 s) on two fanoutd binaries,
# alternated ROUNDS times on the bench PostgreSQL (var/bench-pg, 55434):
# fanoutd's and its writer backends' CPU-seconds over 5 s in the middle of
# the run, the commits PostgreSQL counted then, and the latency; then
# fanout-bench persist of each side (its writer against one COPY), unless
# PERSIST=0. From the repository root:
#   ab.sh ROUNDS BUILD_A BUILD_B OUTDIR
set -uo pipefail
rounds=$1 a=$2 b=$3 out=$4
export FANOUT_JWT_SECRET=bench-secret
mkdir -p "$out"
deploy/pgctl start var/bench-pg 55434 >/dev/null
admin="host=127.0.0.1 port=55434 dbname=fanout user=postgres"
printf '[server]\nport = 18090\nservice_threads = 2\npublish_rate = 1000000\npublish_burst = 1000000\n[postgres]\ndsn = host=127.0.0.1 port=55434 dbname=fanout user=fanout\n[log]\nlevel = warn\n' >"$out/fanout.ini"
cpu() { local s=0; for p in "$@"; do s=$((s + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $s; }
commits() { psql -X -At "$admin" -c "select xact_commit from pg_stat_database where datname = 'fanout'"; }
printf 'round side fanoutd_cpu_s pg_writers_cpu_s commits_5s p50_ms p99_ms p999_ms\n' >"$out/table.txt"
for r in $(seq "$rounds"); do
    sides="A B"; [ $((r % 2)) = 1 ] || sides="B A"
    for side in $sides; do
        if [ "$side" = A ]; then bdir=$a; else bdir=$b; fi
        "$bdir/apps/fanoutd" -c "$out/fanout.ini" >>"$out/fanoutd.log" 2>&1 &
        fpid=$!
        for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.2; done
        psql -X -q "$admin" -c CHECKPOINT
        j=$out/w2-$side-$r.json
        "$bdir/bench/fanout-bench" groups --port 18090 --users 1000 --rate 2000 --seconds 12 \
            --json "$j" >"${j%.json}.txt" 2>&1 &
        bpid=$!
        sleep 4
        pids=$(psql -X -At "$admin" -c "select string_agg(pid::text, ' ') from pg_stat_activity where application_name like 'fanout writer%'")
        f0=$(cpu "$fpid"); p0=$(cpu $pids); c0=$(commits); sleep 5
        f1=$(cpu "$fpid"); p1=$(cpu $pids); c1=$(commits)
        wait "$bpid"
        kill "$fpid"; wait "$fpid" 2>/dev/null; sleep 3
        python3 - "$j" "$r" "$side" "$f0" "$f1" "$p0" "$p1" "$c0" "$c1" >>"$out/table.txt" <<'PY'
import json, sys
j, r, side, f0, f1, p0, p1, c0, c1 = sys.argv[1:]
d = json.load(open(j))["latency_ms"]
print(r, side, "%.2f" % ((int(f1) - int(f0)) / 100), "%.2f" % ((int(p1) - int(p0)) / 100),
      int(c1) - int(c0), "%.2f" % d["p50"], "%.2f" % d["p99"], "%.2f" % d["p999"])
PY
    done
done
column -t "$out/table.txt"
[ "${PERSIST:-1}" = 0 ] && exit 0
for r in $(seq "$rounds"); do
    for side in A B; do
        if [ "$side" = A ]; then bdir=$a; else bdir=$b; fi
        "$bdir/bench/fanout-bench" persist --dsn "host=127.0.0.1 port=55434 dbname=fanout user=fanout" \
            --naive-messages 500 >"$out/persist-$side-$r.txt" 2>&1
        sleep 5
    done
done
grep -H "COPY\|batched" "$out"/persist-*.txt
