#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The Debian package: deploy/package builds it from the tree; it must hold
# the binaries, web client, configuration (a conffile), man pages, systemd
# units and copyright; its units must pass systemd-analyze verify (and a
# broken unit must not); and fanoutd started from the package's own files,
# as its unit's command line does, must serve the test PostgreSQL and its
# web client, then stop cleanly. Prints "package: N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${FANOUT_TEST_PG_DSN:?set by deploy/test}"
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
. "$root/tests/integration/checks.sh"

deb=$("$root/deploy/package" | tail -1)
check "deploy/package prints a .deb" test -f "$deb"
[ -f "$deb" ] || checks_done package
list=$(dpkg-deb -c "$deb")
for f in ./usr/bin/fanoutd ./usr/bin/fanoutctl ./usr/bin/fanout-bench \
    ./usr/share/fanout/web/index.html ./usr/share/fanout/web/app.js ./etc/fanout/fanout.ini \
    ./usr/share/man/man8/fanoutd.8.gz ./usr/share/man/man1/fanoutctl.1.gz \
    ./usr/share/man/man5/fanout.ini.5.gz ./lib/systemd/system/fanoutd.service \
    ./lib/systemd/system/fanoutd-dpdk.service ./usr/share/doc/fanout/copyright \
    ./usr/share/fanout/monitoring/fanout-alerts.yml \
    ./usr/share/fanout/monitoring/fanout-dashboard.json; do
    check "holds $f" contains "$list" " $f\$"
done
check "holds the documentation" contains "$list" " ./usr/share/doc/fanout/operations.md\(.gz\)\?\$"
dpkg-deb -e "$deb" "$work/control"
check "the configuration is a conffile" grep -qx /etc/fanout/fanout.ini "$work/control/conffiles"
check "postinst makes the fanout user" grep -q "adduser --system" "$work/control/postinst"
check "license BSD-3-Clause" sh -c "dpkg-deb -x '$deb' '$work/root' && grep -q 'License: BSD-3-Clause' '$work/root/usr/share/doc/fanout/copyright'"

# The units, pointed at the extracted binary; Debian's dpdk.service stood in.
mkdir -p "$work/units"
for u in fanoutd fanoutd-dpdk; do
    sed "s#/usr/bin/fanoutd#$work/root/usr/bin/fanoutd#" \
        "$work/root/lib/systemd/system/$u.service" >"$work/units/$u.service"
done
printf '[Unit]\nDescription=stand-in\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
    >"$work/units/dpdk.service"
verify() { (cd "$work/units" && SYSTEMD_UNIT_PATH="$work/units:" systemd-analyze verify --man=no "$@" 2>&1); }
out=$(verify "$work/units/fanoutd.service" "$work/units/fanoutd-dpdk.service"); rc=$?
check "systemd-analyze verify passes on both units ($out)" test "$rc" = 0
sed "s#^ExecStart=[^ ]*#ExecStart=$work/no-such-fanoutd#" "$work/units/fanoutd.service" \
    >"$work/units/broken.service"
out=$(verify "$work/units/broken.service"); rc=$?
check "and fails on a broken one" test "$rc" != 0
unit=$(cat "$work/units/fanoutd.service")
check "socket unit: Type=notify, watchdog" contains "$unit" "^WatchdogSec="
check "socket unit: no capabilities" contains "$unit" "^CapabilityBoundingSet=\$"
dpdk=$(cat "$work/units/fanoutd-dpdk.service")
check "DPDK unit: only the four capabilities" contains "$dpdk" \
    "^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_SYS_RAWIO\$"
check "DPDK unit: requires dpdk.service" contains "$dpdk" "^Requires=dpdk.service"

# fanoutd from the package's files, as the unit runs it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed "s/^port = .*/port = $port/" "$work/root/etc/fanout/fanout.ini" >"$work/fanout.ini"
sed -i "/^\[server\]/a web_root = $work/root/usr/share/fanout/web" "$work/fanout.ini"
for b in fanoutd fanoutctl fanout-bench; do
    check "$b prints its version" sh -c "'$work/root/usr/bin/$b' --version | grep -q '^$b 0.1.0'"
done
FANOUT_PG_DSN=$FANOUT_TEST_PG_DSN FANOUT_JWT_SECRET=package-test \
    "$work/root/usr/bin/fanoutd" -c "$work/fanout.ini" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
check "it becomes ready" curl -sf "http://127.0.0.1:$port/readyz" -o /dev/null
check "it serves the packaged web client" sh -c "curl -sf http://127.0.0.1:$port/ | grep -q 'fanout'"
kill -TERM "$pid"
wait "$pid"; rc=$?
pid=
check "SIGTERM exits 0" test "$rc" = 0
[ "$failed" = 0 ] || tail -20 "$work/log"

# Installed for real, in a throwaway root (its own closing line).
unshare -m --propagation private "$root/tests/integration/package_root.sh" "$deb" "$work/overlay"
install_rc=$?
echo "package: $passed passed, $failed failed"
exit $((failed > 0 || install_rc != 0))
