#!/usr/bin/env bash
# shellcheck disable=SC2154  # here, fpid, bpid: set by common.sh
# Per thread of fanoutd, over 5 s in the middle of W2 durable (two lanes):
# CPU ticks, context switches and syscalls (perf stat --per-thread). From
# the repository root:  threads.sh [durable|ephemeral]
set -uo pipefail
source "$(dirname "$0")/common.sh"
mode=${1:-durable}
flag=(); [ "$mode" = ephemeral ] && flag=(--ephemeral)
write_ini "$here/fanout.ini" 2
start_fanoutd build/apps/fanoutd "$here/fanout.ini"
start_w2 "$here/threads-$mode.json" "${flag[@]}"
sleep 4
for t in /proc/$fpid/task/*; do echo "$(basename "$t") $(cpu "$fpid/task/$(basename "$t")")"; done >"$here/t0"
perf stat --per-thread -x, -e context-switches -e raw_syscalls:sys_enter -e syscalls:sys_enter_futex \
    -e syscalls:sys_enter_poll -e syscalls:sys_enter_write -e syscalls:sys_enter_sendto \
    -e syscalls:sys_enter_recvfrom -e syscalls:sys_enter_epoll_wait -p "$fpid" -- sleep 5 2>"$here/threads-$mode.perf"
for t in /proc/$fpid/task/*; do echo "$(basename "$t") $(cpu "$fpid/task/$(basename "$t")")"; done >"$here/t1"
wait "$bpid"
stop_fanoutd
echo "tid ticks_over_5s (100 a CPU-second)"
join "$here/t0" "$here/t1" | awk '{print $1, $3 - $2}' | sort -k2 -n | tail -6 | tee "$here/threads-$mode.cpu"
rm -f "$here/t0" "$here/t1"
grep -v "not counted" "$here/threads-$mode.perf" | awk -F, '$2+0 > 100 {print $1, $2, $4}' | sort
