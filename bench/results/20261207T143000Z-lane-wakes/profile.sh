#!/usr/bin/env bash
# shellcheck disable=SC2154  # here, fpid, bpid: set by common.sh
# perf record -g of fanoutd's two writer lanes (the two busiest threads
# after the service threads) over 5 s of W2 durable; prints the report by
# symbol, callers folded. From the repository root:  profile.sh
set -uo pipefail
source "$(dirname "$0")/common.sh"
write_ini "$here/fanout.ini" 2
start_fanoutd build/apps/fanoutd "$here/fanout.ini"
start_w2 "$here/profile.json"
sleep 3
for t in /proc/$fpid/task/*; do echo "$(basename "$t") $(cpu "$fpid/task/$(basename "$t")")"; done >"$here/t0"
sleep 1
for t in /proc/$fpid/task/*; do echo "$(basename "$t") $(cpu "$fpid/task/$(basename "$t")")"; done >"$here/t1"
lanes=$(join "$here/t0" "$here/t1" | awk '{print $1, $3 - $2}' | sort -k2 -n | tail -4 | head -2 | awk '{print $1}' | paste -sd,)
rm -f "$here/t0" "$here/t1"
echo "lanes (thread ids): $lanes"
perf record -g -o "$here/lanes.data" -t "$lanes" -- sleep 5 >/dev/null 2>&1
wait "$bpid"
stop_fanoutd
perf report -i "$here/lanes.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | head -30
perf report -i "$here/lanes.data" --no-children --sort sym --stdio -G --percent-limit 3 2>/dev/null |
    grep -E -- '--[0-9.]+%--' | head -30
rm -f "$here/lanes.data"
