#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""count: the closing line of deploy/test. Reads meson's testlog.json files
and counts test cases, not suites: each cmocka test, each pytest case, each
case of the shell suites, each node test, each fuzz harness. A suite whose
output says nothing countable counts as one case; a suite that failed with
no failing case counted (a crash, a timeout) adds one failure. Skipped cases
are reported apart and never counted as passed.

    tests/count.py build/meson-logs/testlog.json [...]"""
import json
import re
import sys


def count(output):
    """(passed, failed, skipped) found in one suite's output, or None."""
    runs = re.findall(r"^\[=+\] (\d+) test\(s\) run\.", output, re.M)
    if runs:  # cmocka: each test prints "[       OK ]" once it passed
        total = sum(int(n) for n in runs)
        ok = len(re.findall(r"^\[ +OK +\] ", output, re.M))
        skipped = len(re.findall(r"^\[ +SKIPPED +\] ", output, re.M))
        return ok, total - ok - skipped, skipped
    summary = re.findall(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s", output, re.M)
    if summary:  # pytest's last line: "3 failed, 70 passed, 1 skipped in 9.1s"
        found = dict((w, int(n)) for n, w in re.findall(r"(\d+) (\w+)", summary[-1]))
        return (found.get("passed", 0), found.get("failed", 0) + found.get("errors", 0) +
                found.get("error", 0), found.get("skipped", 0))
    node = re.findall(r"^# (pass|fail|skipped) (\d+)$", output, re.M)
    if node:
        found = dict((w, int(n)) for w, n in node)
        return found.get("pass", 0), found.get("fail", 0), found.get("skipped", 0)
    shell = re.findall(r"^[\w-]+: (\d+) passed, (\d+) failed$", output, re.M)
    if shell:
        return sum(int(p) for p, _ in shell), sum(int(f) for _, f in shell), 0
    fuzz = re.findall(r"^fuzz: \w+(?::| FAILED)", output, re.M)
    if fuzz:
        failed = len([f for f in fuzz if f.endswith("FAILED")])
        return len(fuzz) - failed, failed, 0
    return None


def main(paths):
    passed = failed = skipped = 0
    for path in paths:
        for line in open(path):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except ValueError:  # a torn record: count it, never hide it
                print(f"count: {path}: an unreadable record", file=sys.stderr)
                failed += 1
                continue
            ok = r["result"] in ("OK", "EXPECTEDFAIL")
            found = count((r.get("stdout") or "") + "\n" + (r.get("stderr") or ""))
            p, f, s = found if found else ((1, 0, 0) if ok else (0, 1, 0))
            if not ok and f == 0:
                f = 1
            passed, failed, skipped = passed + p, failed + f, skipped + s
    tail = f", {skipped} skipped" if skipped else ""
    print(f"tests: {passed} passed, {failed} failed{tail}")


if __name__ == "__main__":
    main(sys.argv[1:])
