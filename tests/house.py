#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""house: the rules of the code's layout that the compiler cannot see, checked
on the source tree (docs/architecture.md, "Layout"). The include walls are
the build's (each layer's library sees only itself and the layers below);
this checks the rest, and prints one line per rule, "ok - ..." or
"not ok - ...", then "house: N passed, M failed":

- libpq-fe.h is included only in persist/ (and tests and bench);
- persist_writer_submit is called from one place outside persist/, the
  publish door (core/publish.c), and fanout_publish from one place outside
  the engine, the broadcast door;
- neither edge includes the other's headers;
- no SQL statement outside persist/;
- no circle of product .c files that call each other's functions;
- no .c file over 1,000 lines and no function over 80 lines, except those
  listed below with the reason they are still so;
- every source file opens with its SPDX license line.

    tests/house.py [ROOT]"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
PRODUCT = ("common", "persist", "core", "dataplane", "controlplane", "apps")

# Functions kept over 80 lines on purpose, each with a comment in the code
# saying why (a state machine, an RFC's steps in order, one switch, one
# round trip); a file or function may only shrink while it is here.
FILE_LINES_ALLOWED = {}
FUNCTION_LINES_ALLOWED = {
    "http_req_feed": 140,          # common/ws.c: the upgrade parser's state machine
    "tcp_input": 215,              # dataplane/dpdk/tcp_input.c: RFC 9293 3.10.7, in its order
    "ws_callback": 130,            # libwebsockets' callback: one switch over its reasons
    "batch_execute": 120,          # persist/batch.c: one pipeline round trip, in order
    "batch_resolve": 130,          # persist/batch.c: after an unknown COMMIT outcome
}


def product_files(ext):
    out = []
    for top in PRODUCT:
        for d, _, fs in os.walk(os.path.join(ROOT, top)):
            out += [os.path.relpath(os.path.join(d, f), ROOT) for f in fs if f.endswith(ext)]
    return sorted(out)


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


def read(path):
    return open(os.path.join(ROOT, path), errors="replace").read()


results = []


def check(ok, what, detail=""):
    results.append(ok)
    print(("ok - " if ok else "not ok - ") + what + (f": {detail}" if detail and not ok else ""))


sources = product_files(".c") + product_files(".h")
texts = {f: strip_comments(read(f)) for f in sources}

libpq = [f for f, t in texts.items() if "libpq-fe.h" in t and not f.startswith("persist/")]
check(not libpq, "libpq-fe.h only in persist/", ", ".join(libpq))

# Every source file names its license (LICENSE: BSD-3-Clause) in its first
# lines: the C sources here, and in tests, bench, web and the scripts too.
def all_sources():
    out = []
    for top in PRODUCT + ("tests", "bench", "web", "deploy"):
        for d, _, fs in os.walk(os.path.join(ROOT, top)):
            if "/results" in d or "/corpus" in d or "node_modules" in d or "__pycache__" in d:
                continue
            for f in fs:
                path = os.path.relpath(os.path.join(d, f), ROOT)
                if f.endswith((".c", ".h", ".py", ".js", ".mjs", ".html", ".css", ".sql", ".sh")) \
                        or f == "meson.build" or read(path).startswith("#!"):
                    out.append(path)
    return sorted(out)


unlicensed = [f for f in all_sources()
              if "SPDX-License-Identifier: BSD-3-Clause" not in "\n".join(read(f).split("\n")[:3])]
check(not unlicensed, "every source file opens with its SPDX license line", ", ".join(unlicensed))

calls = [f for f, t in texts.items() if re.search(r"\bpersist_writer_submit\s*\(", t)
         and f.endswith(".c") and not f.startswith("persist/")]
check(calls == ["core/publish.c"], "persist_writer_submit called outside persist/ only by the publish door",
      ", ".join(calls))

calls = [f for f, t in texts.items() if re.search(r"\bfanout_publish\s*\(", t)
         and f.endswith(".c") and not f.startswith("dataplane/fanout/")]
check(calls == ["core/publish.c"], "fanout_publish called only by the broadcast door", ", ".join(calls))

socket_h = {os.path.basename(f) for f in sources if f.startswith("dataplane/socket/") and f.endswith(".h")}
dpdk_h = {os.path.basename(f) for f in sources if f.startswith("dataplane/dpdk/") and f.endswith(".h")}
sideways = []
for f, t in texts.items():
    inc = set(re.findall(r'#include\s+"([^"]+)"', t))
    if f.startswith("dataplane/socket/") and inc & dpdk_h:
        sideways.append(f)
    if f.startswith("dataplane/dpdk/") and inc & socket_h:
        sideways.append(f)
check(not sideways, "no include between the socket and DPDK edges", ", ".join(sideways))

sql = re.compile(r'"\s*(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WITH \w+ AS \()\b')
outside = [f for f, t in texts.items() if sql.search(t) and not f.startswith("persist/")]
check(not outside, "SQL only in persist/", ", ".join(outside))

# Call circles: file A calls B when A names a non-static function that B alone
# defines (definitions begin a line and their parameter list ends in a brace).
cfiles = [f for f in sources if f.endswith(".c")]
defn = re.compile(r"^(?!static\b|typedef\b|extern\b|struct\s+\w+\s*\{)[A-Za-z_][^;{}()=#]*?"
                  r"\b([A-Za-z_]\w*)\s*\(([^;{}]*)\)\s*\{", re.M)
owner = {}
for f in cfiles:
    for m in defn.finditer(texts[f]):
        owner.setdefault(m.group(1), f)
edges = {f: set() for f in cfiles}
for f in cfiles:
    for name in set(re.findall(r"\b[A-Za-z_]\w*\b", texts[f])):
        g = owner.get(name)
        if g and g != f:
            edges[f].add(g)
index, low, stack, on, circles = {}, {}, [], set(), []


def connect(v, counter=[0]):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            connect(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            circles.append(sorted(comp))


sys.setrecursionlimit(10000)
for f in cfiles:
    if f not in index:
        connect(f)
check(not circles, "no circle of files that call each other", "; ".join(" ".join(c) for c in circles))

big = []
for f in cfiles:
    n = read(f).count("\n")
    if n > FILE_LINES_ALLOWED.get(f, 1000):
        big.append(f"{f} ({n} lines)")
check(not big, "no .c file over 1,000 lines but the listed debts, none grown", ", ".join(big))

long_functions = []
start = re.compile(r"^(?:static\s+)?[A-Za-z_][\w \*]*?\b([A-Za-z_]\w*)\((?:[^;]*)$")
for f in cfiles:
    lines = read(f).split("\n")
    name, first = None, 0
    for i, line in enumerate(lines):
        m = start.match(line)
        if m and name is None and not line.endswith(";"):
            name, first = m.group(1), i
        elif line == "}" and name:
            n = i - first + 1
            if n > FUNCTION_LINES_ALLOWED.get(name, 80):
                long_functions.append(f"{f}:{name} ({n} lines)")
            name = None
        elif line.endswith(";") and name and i == first:
            name = None
check(not long_functions, "no function over 80 lines but the listed ones, none grown",
      ", ".join(long_functions))

passed = sum(results)
print(f"house: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
