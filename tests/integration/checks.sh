# SPDX-License-Identifier: BSD-3-Clause
# checks.sh: what the shell suites share, sourced: check NAME COMMAND...
# counts a case as passed or failed, contains TEXT PATTERN greps a text,
# free_port prints a loopback port no one listens on (the kernel's choice: a
# port made up at random can be one a server of the suite holds), and
# checks_done SUITE prints the closing line tests/count.py reads
# ("SUITE: N passed, N failed") and exits non-zero on any failure.
passed=0 failed=0
check() { # name, then a command that must succeed
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok - $name"
    else failed=$((failed + 1)); echo "FAIL - $name"; fi
}
contains() { grep -q -- "$2" <<<"$1"; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
checks_done() {
    echo "$1: $passed passed, $failed failed"
    exit $((failed > 0))
}
