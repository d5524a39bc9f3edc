#!/usr/bin/env bash
# shellcheck disable=SC2154  # here, fpid, bpid: set by common.sh
# W2 durable with each number of writer lanes given, alternated ROUNDS
# times: fanoutd's and the writer backends' CPU-seconds over 5 s in the
# middle of the run, and the latency. From the repository root:
#   lanes.sh ROUNDS "1 2 4" OUTDIR
set -uo pipefail
rounds=$1 counts=$2 out=$3
source "$(dirname "$0")/common.sh"
mkdir -p "$out"
printf 'round writers fanoutd_cpu_s pg_writers_cpu_s p50_ms p99_ms p999_ms\n' >"$out/table.txt"
for r in $(seq "$rounds"); do
    for lanes in $counts; do
        write_ini "$out/fanout-$lanes.ini" "$lanes"
        start_fanoutd build/apps/fanoutd "$out/fanout-$lanes.ini"
        psql -X -q "$ADMIN" -c CHECKPOINT
        j=$out/$r-$lanes.json
        start_w2 "$j"
        sleep 4
        pids=$(psql -X -At "$ADMIN" -c "select string_agg(pid::text, ' ') from pg_stat_activity where application_name like 'fanout writer%'")
        f0=$(cpu "$fpid"); p0=$(cpu $pids); sleep 5; f1=$(cpu "$fpid"); p1=$(cpu $pids)
        wait "$bpid"
        stop_fanoutd
        python3 - "$j" "$r" "$lanes" "$f0" "$f1" "$p0" "$p1" >>"$out/table.txt" <<'PY'
import json, sys
j, r, lanes, f0, f1, p0, p1 = sys.argv[1:]
d = json.load(open(j))["latency_ms"]
print(r, lanes, "%.2f" % ((int(f1) - int(f0)) / 100), "%.2f" % ((int(p1) - int(p0)) / 100),
      "%.2f" % d["p50"], "%.2f" % d["p99"], "%.2f" % d["p999"])
PY
    done
done
column -t "$out/table.txt"
