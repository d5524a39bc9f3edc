#!/usr/bin/env python3
"""How late a thread that asks to sleep 1 ms gets a CPU back on this machine:
the overshoot of each sleep, in ms (p50, p99, p99.9, worst). Usage:
wake.py SECONDS"""
import sys
import time

end = time.monotonic() + float(sys.argv[1])
late = []
while time.monotonic() < end:
    t0 = time.monotonic_ns()
    time.sleep(0.001)
    late.append((time.monotonic_ns() - t0 - 1_000_000) / 1e6)
late.sort()
q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
print("wakes %d late_ms p50 %.3f p99 %.3f p999 %.3f max %.3f"
      % (len(late), q(0.5), q(0.99), q(0.999), late[-1]))
