#!/usr/bin/env bash
# fanout-bench dpdk-null of this tree's build, ROUNDS rounds, one after the
# other: 1,000 connections x 10,000 messages, 10,000 x 1,000, 100,000 x
# 200 (compare-revs's sizes) and 100,000 x 1,000 (a run five times as
# long, the connections' state faulted in once for more of it); 64 B,
# zero_copy all. Prints deliveries/s per lcore. From the repository root:
#   direct.sh [ROUNDS]
set -uo pipefail
rounds=${1:-5}
for spec in 1000:10000 10000:1000 100000:200 100000:1000; do
    rates=()
    for _ in $(seq "$rounds"); do
        rates+=("$(build/bench/fanout-bench dpdk-null --connections "${spec%:*}" --messages "${spec#*:}" \
            --payload 64 --zero-copy all 2>&1 | grep -A1 ' payload' | tail -1 | awk '{printf "%.2f", $3 / 1e6}')")
    done
    echo "${spec%:*} connections x ${spec#*:} messages: ${rates[*]} M deliveries/s"
done
