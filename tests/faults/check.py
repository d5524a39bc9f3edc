#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""check: the fault harness's checker (docs/reliability.md). Reads a recorded
history (JSON lines, written by tests/faults/run.py) and the rows PostgreSQL
holds for the history's channels, and checks what fanout promises:

1. every acknowledged publish is stored, at the seq its ack named (lost
   acks = 0);
2. one row per (channel, author, client_msg_id), retries included (storage
   duplicates = 0), and a publish refused for good is not stored;
3. each channel's seqs are dense (1, 2, 3, ...); each subscriber saw them in
   increasing order once repeats are dropped (order violations = 0), every
   delivery as stored, and, caught up at the end, every seq after the one it
   started from (delivery gaps = 0);
4. a publish whose outcome stayed unknown is stored once or not at all;
5. in a cluster, after a channel changed owner the old owner committed
   nothing under its old epoch: each row keeps the owner epoch it was
   committed under (migration 0007), and in a channel epochs never go down
   as seqs go up (stale owner commits = 0). Rows from before 0007 carry no
   epoch and are not judged.

It prints a report (operations, faults, each violation with what it
involves) and exits 1 on any violation, 2 on bad input.

    check.py HISTORY --dsn DSN [--json REPORT]"""
import argparse
import collections
import json
import subprocess
import sys

# Error codes after which the server has not stored the publish and will
# not: the request itself was refused. Others ("unavailable",
# "overloaded", a timeout) leave the outcome unknown until a retry.
DEFINITE = {"bad_request", "bad_json", "not_member", "too_large", "rate_limited", "bad_parent"}


def load_history(path):
    ops = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    ops.append(json.loads(line))
                except ValueError as e:
                    print(f"{path}:{n}: not JSON: {e}", file=sys.stderr)
                    raise SystemExit(2)
    return ops


def load_rows(dsn, channels):
    """The stored messages of channels: dicts of channel, seq, author, id."""
    if not channels:
        return []
    query = ("SELECT m.channel_id, m.seq, u.name, m.client_msg_id, "
             "coalesce(m.owner_epoch::text, '') FROM messages m "
             "JOIN users u ON u.id = m.author_id WHERE m.channel_id IN (%s) "
             "ORDER BY m.channel_id, m.seq" % ",".join(str(int(c)) for c in sorted(channels)))
    out = subprocess.run(["psql", dsn, "-tAX", "-F", "\t", "-c", query],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        c, s, author, cid, epoch = line.split("\t")
        rows.append({"channel": int(c), "seq": int(s), "author": author, "id": cid,
                     "epoch": int(epoch) if epoch else None})
    return rows


class Report:
    def __init__(self):
        self.violations = []
        self.counts = collections.Counter()

    def add(self, kind, detail, ops=()):
        self.counts[kind] += 1
        self.violations.append({"kind": kind, "detail": detail, "ops": list(ops)})


def check_storage(history, rows, r):
    """Rules 1, 2 and 4, and each channel's seqs dense."""
    at = {(x["channel"], x["seq"]): x for x in rows}
    by_key = collections.defaultdict(list)
    for x in rows:
        by_key[(x["channel"], x["author"], x["id"])].append(x)
    for key, xs in by_key.items():
        if len(xs) > 1:
            r.add("storage duplicate", f"channel {key[0]}, author {key[1]}, id {key[2]}: "
                  f"seqs {[x['seq'] for x in xs]}")
    acked = {}
    for op in history:
        if op["op"] != "ok":
            continue
        key = (op["channel"], op["author"], op["id"])
        row = at.get((op["channel"], op["seq"]))
        if row is None or (row["author"], row["id"]) != (op["author"], op["id"]):
            r.add("lost ack", f"channel {op['channel']} seq {op['seq']} id {op['id']} was "
                  f"acknowledged; stored there: {row}", [op])
        if key in acked and acked[key]["seq"] != op["seq"]:
            r.add("acked twice apart", f"id {op['id']}: seqs {acked[key]['seq']} and "
                  f"{op['seq']}", [acked[key], op])
        acked[key] = op
    for op in history:
        if op["op"] == "fail" and op.get("code") in DEFINITE:
            key = (op["channel"], op["author"], op["id"])
            if by_key.get(key) and key not in acked:
                r.add("refused but stored", f"id {op['id']} refused ({op['code']}) yet "
                      f"stored at seq {by_key[key][0]['seq']}", [op])
    for c in sorted({x["channel"] for x in rows}):
        seqs = [x["seq"] for x in rows if x["channel"] == c]
        missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
        if missing:
            r.add("seq gap", f"channel {c} has no rows at seqs {missing[:20]}")
    invoked = {(op["channel"], op["author"], op["id"]) for op in history if op["op"] == "invoke"}
    unknown = invoked - set(acked) - {(op["channel"], op["author"], op["id"])
                                      for op in history if op["op"] == "fail"}
    r.unknown_stored = sum(1 for k in unknown if by_key.get(k))
    r.unknown_not_stored = len(unknown) - r.unknown_stored


def check_deliveries(history, rows, r):
    """Rule 3: order, fidelity and gaps per subscriber and channel."""
    at = {(x["channel"], x["seq"]): x for x in rows}
    head = collections.Counter()
    for x in rows:
        head[x["channel"]] = max(head[x["channel"]], x["seq"])
    seen = collections.defaultdict(set)
    top = collections.Counter()
    start = {}
    final = {}
    for op in history:
        if op["op"] == "resume":
            for c, since in op["since"].items():
                start.setdefault((op["sub"], int(c)), since)
        elif op["op"] == "deliver":
            key = (op["sub"], op["channel"])
            if op["seq"] in seen[key]:
                continue  # a repeat after a resume: allowed, dropped
            if op["seq"] < top[key]:
                r.add("order violation", f"{op['sub']} got channel {op['channel']} seq "
                      f"{op['seq']} after seq {top[key]}", [op])
            row = at.get((op["channel"], op["seq"]))
            if row is None or row["id"] != op["id"]:
                r.add("wrong delivery", f"{op['sub']} got channel {op['channel']} seq "
                      f"{op['seq']} as id {op['id']}; stored: {row}", [op])
            seen[key].add(op["seq"])
            top[key] = max(top[key], op["seq"])
        elif op["op"] == "final":
            final[op["sub"]] = op
    for (sub, c), since in start.items():
        if sub not in final or not final[sub].get("caught_up"):
            r.add("not caught up", f"{sub} did not reach channel {c}'s head by the end")
            continue
        missing = sorted(set(range(since + 1, head[c] + 1)) - seen[(sub, c)])
        if missing:
            r.add("delivery gap", f"{sub} never got channel {c} seqs {missing[:20]}"
                  f"{' ...' if len(missing) > 20 else ''} ({len(missing)} in all)")


def check_epochs(rows, r):
    """Rule 5: a channel's owner epochs never go down as its seqs go up; a
    row under an older epoch after one under a newer is a commit by a stale
    owner after the new one took the channel."""
    newest = {}
    r.epochs = collections.defaultdict(set)
    for x in sorted(rows, key=lambda x: (x["channel"], x["seq"])):
        e = x.get("epoch")
        if e is None:
            continue
        r.epochs[x["channel"]].add(e)
        seq, top = newest.get(x["channel"], (0, e))
        if e < top:
            r.add("stale owner commit", f"channel {x['channel']} seq {x['seq']} was committed "
                  f"under epoch {e}, after seq {seq} under epoch {top}")
        else:
            newest[x["channel"]] = (x["seq"], e)


def check(history, rows):
    r = Report()
    check_storage(history, rows, r)
    check_deliveries(history, rows, r)
    check_epochs(rows, r)
    return r


def summary(history, rows, r):
    ops = collections.Counter(op["op"] for op in history)
    faults = collections.Counter(op["kind"] for op in history
                                 if op["op"] == "fault" and op.get("phase") == "start")
    kinds = ("lost ack", "storage duplicate", "order violation", "delivery gap", "seq gap",
             "wrong delivery", "refused but stored", "acked twice apart", "not caught up",
             "stale owner commit")
    return {
        "operations": dict(ops),
        "faults": dict(faults),
        "rows": len(rows),
        "acknowledged": ops["ok"],
        "unknown_outcome": {"stored": r.unknown_stored, "not_stored": r.unknown_not_stored},
        "owner_changes": sum(max(0, len(e) - 1) for e in r.epochs.values()),
        "violations_by_kind": {k: r.counts[k] for k in kinds},
        "violations": r.violations[:200],
        "ok": not r.violations,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("history")
    p.add_argument("--dsn", required=True)
    p.add_argument("--json", help="write the report here too")
    a = p.parse_args(argv)
    history = load_history(a.history)
    channels = {op["channel"] for op in history if "channel" in op}
    try:
        rows = load_rows(a.dsn, channels)
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"check: cannot read PostgreSQL ({a.dsn}): "
              f"{getattr(e, 'stderr', '') or e}".strip(), file=sys.stderr)
        return 2
    r = check(history, rows)
    rep = summary(history, rows, r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rep, f, indent=1)
    print(f"history: {sum(rep['operations'].values())} operations {rep['operations']}")
    print(f"faults injected: {sum(rep['faults'].values())} {rep['faults']}")
    print(f"rows: {rep['rows']}, acknowledged: {rep['acknowledged']}, unknown outcome: "
          f"{rep['unknown_outcome']['stored']} stored, {rep['unknown_outcome']['not_stored']} not")
    print(f"owner changes seen in the rows: {rep['owner_changes']}")
    for k, n in rep["violations_by_kind"].items():
        print(f"{k}: {n}")
    for v in r.violations[:50]:
        print(f"VIOLATION {v['kind']}: {v['detail']}")
    print("check: ok" if rep["ok"] else f"check: {len(r.violations)} violation(s)")
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
