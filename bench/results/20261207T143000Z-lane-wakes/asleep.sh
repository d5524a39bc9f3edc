#!/usr/bin/env bash
# shellcheck disable=SC2154  # here, fpid, bpid: set by common.sh
# A service thread woken only when asleep (asleep.patch, tried and not
# kept) against ed489e2, alternated ROUNDS times on W2 durable and
# ephemeral: fanoutd's CPU-seconds, write() calls and context switches over
# 5 s in the middle of each run. From the repository root, with the two
# binaries built (git worktree add var/revs/ed489e2 ed489e2; there and in a
# second worktree with asleep.patch applied: meson setup build
# -Dbuildtype=debugoptimized; ninja -C build apps/fanoutd):
#   asleep.sh OLD_FANOUTD NEW_FANOUTD ROUNDS OUTDIR
set -uo pipefail
old=$1 new=$2 rounds=$3 out=$4
source "$(dirname "$0")/common.sh"
mkdir -p "$out"
write_ini "$out/fanout.ini" 2
printf 'round mode bin cpu_s writes ctxsw deliveries p50_ms p99_ms\n' >"$out/table.txt"
for r in $(seq "$rounds"); do
    for mode in durable ephemeral; do
        for which in old new; do
            bin=$old; [ "$which" = new ] && bin=$new
            flag=(); [ "$mode" = ephemeral ] && flag=(--ephemeral)
            start_fanoutd "$bin" "$out/fanout.ini"
            j=$out/$r-$mode-$which.json
            start_w2 "$j" "${flag[@]}"
            sleep 4
            t0=$(cpu "$fpid")
            perf stat -x, -e syscalls:sys_enter_write -e context-switches -p "$fpid" -- sleep 5 2>"${j%.json}.perf"
            t1=$(cpu "$fpid")
            wait "$bpid"
            stop_fanoutd
            w=$(grep sys_enter_write "${j%.json}.perf" | cut -d, -f1)
            c=$(grep context-switches "${j%.json}.perf" | cut -d, -f1)
            python3 - "$j" "$r" "$mode" "$which" "$t0" "$t1" "$w" "$c" >>"$out/table.txt" <<'PY'
import json, sys
j, r, mode, which, t0, t1, w, c = sys.argv[1:]
d = json.load(open(j))
print(r, mode, which, "%.2f" % ((int(t1) - int(t0)) / 100), w, c, d["deliveries"],
      "%.2f" % d["latency_ms"]["p50"], "%.2f" % d["latency_ms"]["p99"])
PY
        done
    done
done
column -t "$out/table.txt"
