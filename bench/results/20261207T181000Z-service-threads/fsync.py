#!/usr/bin/env python3
"""The disk's own flush tail: N writes of 8 KB at the end of a file in
DIR, each followed by fdatasync (as PostgreSQL's WAL flush does), timed one
by one; prints p50, p99, p99.9 and the worst in ms. Usage: fsync.py DIR [N]"""
import os, sys, time

d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5000
path = os.path.join(d, "fsync-probe.tmp")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block, times = b"x" * 8192, []
try:
    for i in range(n):
        os.pwrite(fd, block, (i % 2048) * 8192)
        t = time.perf_counter()
        os.fdatasync(fd)
        times.append((time.perf_counter() - t) * 1000)
finally:
    os.close(fd)
    os.unlink(path)
times.sort()
q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
print("fdatasync of 8 KB, %d times: p50 %.3f ms, p99 %.3f, p99.9 %.3f, worst %.3f"
      % (n, q(0.5), q(0.99), q(0.999), times[-1]))
