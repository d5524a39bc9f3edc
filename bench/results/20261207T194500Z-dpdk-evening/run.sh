#!/usr/bin/env bash
# fanout-bench dpdk-null (one worker lcore into net_null, 64 B, frames by
# reference) at 1,000, 10,000 and 100,000 connections, ROUNDS rounds, and
# the line of each. From the repository root:
#   run.sh ROUNDS OUTDIR
set -uo pipefail
rounds=$1 out=$2
mkdir -p "$out"
for r in $(seq "$rounds"); do
    for n in 1000:10000 10000:1000 100000:200; do
        build/bench/fanout-bench dpdk-null --connections "${n%:*}" --messages "${n#*:}" \
            --payload 64 --zero-copy all >"$out/$r-${n%:*}.txt" 2>&1
        printf '%s %s %s\n' "$r" "${n%:*}" \
            "$(grep -E '^\s+64\s+all\s+[0-9]+' "$out/$r-${n%:*}.txt" | awk '{print $3}')"
    done
done | tee "$out/table.txt"
