# SPDX-License-Identifier: BSD-3-Clause
# checks.sh: what the shell suites share, sourced: check NAME COMMAND...
# counts a case as passed or failed, contains TEXT PATTERN greps a text,
# and checks_done SUITE prints the closing line tests/count.py reads
# ("SUITE: N passed, N failed") and exits non-zero on any failure.
passed=0 failed=0
check() { # name, then a command that must succeed
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok - $name"
    else failed=$((failed + 1)); echo "FAIL - $name"; fi
}
contains() { grep -q -- "$2" <<<"$1"; }
checks_done() {
    echo "$1: $passed passed, $failed failed"
    exit $((failed > 0))
}
