#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The shipped monitoring files (deploy/monitoring/): Prometheus' own promtool
# accepts the alert rules and passes their unit tests
# (tests/monitoring/alerts_test.yml: each rule fires when it should and not
# otherwise); a rule file with a broken expression and a test that expects
# the wrong alert are refused, so these checks can fail; the Grafana
# dashboard is JSON with a query behind every panel. A real Prometheus
# loading them against a real node is tests/e2e/test_monitoring.py.
# Prints "monitoring: N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$root/tests/integration/checks.sh"
rules=$root/deploy/monitoring/fanout-alerts.yml

check "promtool accepts the alert rules" promtool check rules "$rules"
check "the rules' unit tests pass" sh -c "cd '$root/tests/monitoring' && promtool test rules alerts_test.yml"
sed 's/expr: fanout_persist_connected == 0/expr: fanout_persist_connected == = 0/' "$rules" > "$work/bad.yml"
check "a broken expression is refused" sh -c "! promtool check rules '$work/bad.yml' >/dev/null 2>&1"
mkdir -p "$work/t/tests/monitoring" "$work/t/deploy/monitoring"
cp "$rules" "$work/t/deploy/monitoring/"
sed 's/summary: "fanout node a:8080 has lost PostgreSQL"/summary: "wrong"/' \
    "$root/tests/monitoring/alerts_test.yml" > "$work/t/tests/monitoring/alerts_test.yml"
check "a wrong expectation fails the unit tests" \
    sh -c "cd '$work/t/tests/monitoring' && ! promtool test rules alerts_test.yml >/dev/null 2>&1"
check "the dashboard is JSON with a query in every panel" /usr/bin/python3 -c "
import json, sys
d = json.load(open('$root/deploy/monitoring/fanout-dashboard.json'))
assert d['panels'] and all(t['expr'] for p in d['panels'] for t in p['targets']), 'a panel without a query'
"
checks_done monitoring
