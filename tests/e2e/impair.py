# SPDX-License-Identifier: BSD-3-Clause
"""An impairing Ethernet forwarder for the DPDK edge tests and the fault
harness's clients (tests/faults/netem.py): bridges two interfaces (raw
AF_PACKET sockets) and, in both directions, drops, delays, reorders and
duplicates frames like tc netem would. The test kernel has no sch_netem, so
test_dpdk_edge.py puts this between the kernel clients and the DPDK port,
and the fault harness between its clients and the nodes. Seeded: a run is
reproducible.

    python3 impair.py IFACE_A IFACE_B [--loss P] [--delay MS] [--jitter MS]
                      [--reorder P] [--duplicate P] [--seed N] [--stats FILE] [--off]

Reordering as netem does it: a reordered frame goes out at once while the
others wait their delay. SIGUSR1 turns the impairment on, SIGUSR2 off (the
fault harness's netem bursts); --off starts it off, forwarding frames as
they come. Stops on SIGTERM, writing its counts to --stats."""
import argparse
import heapq
import json
import random
import select
import signal
import socket
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def open_raw(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setblocking(False)
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--loss", type=float, default=0)
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--jitter", type=float, default=0)
    p.add_argument("--reorder", type=float, default=0)
    p.add_argument("--duplicate", type=float, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stats")
    p.add_argument("--off", action="store_true")
    a = p.parse_args()
    rnd = random.Random(a.seed)
    socks = {"a": open_raw(a.a), "b": open_raw(a.b)}
    other = {"a": socks["b"], "b": socks["a"]}
    queue, seq = [], 0  # (due, seq, socket, frame)
    stats = {"forwarded": 0, "dropped": 0, "duplicated": 0, "reordered": 0, "bursts": 0}
    running, on = [True], [not a.off]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))

    def switch(state):
        stats["bursts"] += state and not on[0]
        on[0] = state
    signal.signal(signal.SIGUSR1, lambda *_: switch(True))
    signal.signal(signal.SIGUSR2, lambda *_: switch(False))

    def schedule(out, frame, now):
        nonlocal seq
        if not on[0]:
            due = now
        elif rnd.random() < a.reorder:
            due = now
            stats["reordered"] += 1
        else:
            due = now + max(0.0, a.delay + rnd.uniform(-a.jitter, a.jitter)) / 1000
        seq += 1
        heapq.heappush(queue, (due, seq, out, frame))

    while running[0]:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
                stats["forwarded"] += 1
            except OSError:
                stats["dropped"] += 1
        wait = max(0.0, min(0.05, queue[0][0] - now)) if queue else 0.05
        ready, _, _ = select.select(list(socks.values()), [], [], wait)
        now = time.monotonic()
        for name, s in socks.items():
            if s not in ready:
                continue
            for _ in range(64):
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own sends, seen again
                if on[0] and rnd.random() < a.loss:
                    stats["dropped"] += 1
                    continue
                schedule(other[name], frame, now)
                if on[0] and rnd.random() < a.duplicate:
                    stats["duplicated"] += 1
                    schedule(other[name], frame, now)
    if a.stats:
        with open(a.stats, "w") as f:
            json.dump(stats, f)


if __name__ == "__main__":
    main()
