#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The Debian package installed for real, in a throwaway root: an overlay of
# this machine's / whose writes land in a scratch directory, in a mount
# namespace of its own (run under unshare -m by test_package.sh), so the
# machine itself is not touched. dpkg installs the .deb and runs its
# maintainer scripts; fanoutd starts from the unit's own command line, as
# the unit's user, with the unit's environment file; fanoutctl, run bare,
# finds that node and its secret; dpkg purges it all again.
# Prints "package-install: N passed, N failed".
#
#   unshare -m --propagation private package_root.sh DEB SCRATCH
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
deb=$1 scratch=$2
: "${FANOUT_TEST_PG_DSN:?set by deploy/test}"
. "$root/tests/integration/checks.sh"
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; }
trap cleanup EXIT

mkdir -p "$scratch/upper" "$scratch/work" "$scratch/merged"
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" \
    "$scratch/merged" || { echo "package-install: cannot make the overlay"; exit 1; }
m=$scratch/merged
for d in proc dev sys; do mount --bind "/$d" "$m/$d"; done
mount -t tmpfs tmpfs "$m/run"
in_root() { chroot "$m" "$@"; }

cp "$deb" "$m/tmp/fanout.deb"
check "the overlay starts without fanout" test ! -e "$m/usr/bin/fanoutd"
out=$(in_root env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/fanout.deb 2>&1); rc=$?
check "dpkg -i installs it ($out)" test "$rc" = 0
check "postinst made the fanout system user" in_root getent passwd fanout
check "postinst wrote a fresh secret" grep -q '^FANOUT_JWT_SECRET=[0-9a-f]\{64\}$' \
    "$m/etc/default/fanout"
mode=$(in_root stat -c '%a %U %G' /etc/default/fanout)
check "that only root and group fanout read ($mode)" test "$mode" = "640 root fanout"
check "the machine itself has none of it" test ! -e /etc/default/fanout

# The operator's part (docs/deploy.md): the DSN, a port, an admin.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "FANOUT_PG_DSN=$FANOUT_TEST_PG_DSN" >>"$m/etc/default/fanout"
sed -i "s/^port = .*/port = $port/" "$m/etc/fanout/fanout.ini"
printf '\n[auth]\nadmins = ops\n' >>"$m/etc/fanout/fanout.ini"

# The unit's ExecStart, User and EnvironmentFile, as systemd would use them.
unit=$m/lib/systemd/system/fanoutd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
check "the unit runs $exec_start as $user" test "$exec_start" = \
    "/usr/bin/fanoutd -c /etc/fanout/fanout.ini" -a "$user" = fanout
mapfile -t env_file < <(grep -v '^#' "$m/etc/default/fanout") # a line is a variable
# shellcheck disable=SC2086 # the command line is split as systemd splits it
chroot --userspec=fanout:fanout "$m" env -i "${env_file[@]}" $exec_start >"$scratch/log" 2>&1 &
pid=$!
for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
check "fanoutd from the unit's command line becomes ready" \
    curl -sf "http://127.0.0.1:$port/readyz" -o /dev/null
check "it runs as the fanout user" test "$(in_root stat -c %U "/proc/$pid")" = fanout
out=$(in_root env -i PATH=/usr/bin:/bin fanoutctl status 2>&1); rc=$?
ok=$([ "$rc" = 0 ] && grep -q 'persist       connected' <<<"$out" && echo y)
check "fanoutctl status, bare, finds the node and its secret ($out)" test "$ok" = y
kill -TERM "$pid"
wait "$pid"; rc=$?
pid=
check "SIGTERM exits 0" test "$rc" = 0
[ "$failed" = 0 ] || tail -20 "$scratch/log"

out=$(in_root dpkg --purge fanout 2>&1); rc=$?
check "dpkg --purge removes it ($out)" test "$rc" = 0
check "the binary is gone" test ! -e "$m/usr/bin/fanoutd"
check "the secrets file is gone" test ! -e "$m/etc/default/fanout"
check "the configuration is gone" test ! -e "$m/etc/fanout/fanout.ini"
checks_done package-install
