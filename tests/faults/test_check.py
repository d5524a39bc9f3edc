# SPDX-License-Identifier: BSD-3-Clause
"""Unit tests of the checker (tests/faults/check.py) on crafted histories and
rows: a clean history passes, and each kind of violation is caught."""
import copy

from check import check


def row(c, s, author, cid):
    return {"channel": c, "seq": s, "author": author, "id": cid}


def op(kind, **kw):
    return {"op": kind, **kw}


BASE_ROWS = [row(1, 1, "p1", "a"), row(1, 2, "p2", "b"), row(1, 3, "p1", "c")]
BASE = [
    op("resume", sub="s1", since={"1": 0}),
    op("invoke", proc="p1", author="p1", channel=1, id="a"),
    op("ok", proc="p1", author="p1", channel=1, id="a", seq=1),
    op("deliver", sub="s1", channel=1, seq=1, id="a"),
    op("invoke", proc="p2", author="p2", channel=1, id="b"),
    op("info", proc="p2", author="p2", channel=1, id="b", reason="timeout"),
    op("invoke", proc="p2", author="p2", channel=1, id="b"),
    op("ok", proc="p2", author="p2", channel=1, id="b", seq=2),
    op("deliver", sub="s1", channel=1, seq=2, id="b"),
    op("resume", sub="s1", since={"1": 2}),
    op("deliver", sub="s1", channel=1, seq=2, id="b"),  # a repeat: fine
    op("invoke", proc="p1", author="p1", channel=1, id="c"),
    op("info", proc="p1", author="p1", channel=1, id="c", reason="disconnected"),
    op("deliver", sub="s1", channel=1, seq=3, id="c"),
    op("invoke", proc="p1", author="p1", channel=1, id="d"),
    op("fail", proc="p1", author="p1", channel=1, id="d", code="not_member"),
    op("final", sub="s1", caught_up=True),
]


def kinds(history, rows):
    return sorted(v["kind"] for v in check(history, rows).violations)


def test_a_clean_history_passes():
    r = check(BASE, BASE_ROWS)
    assert r.violations == []
    assert (r.unknown_stored, r.unknown_not_stored) == (1, 0)  # "c": stored once


def test_a_lost_ack_is_caught():
    # seq 2 acknowledged, then gone from storage
    assert "lost ack" in kinds(BASE, BASE_ROWS[:1] + BASE_ROWS[2:])
    # the ack named another seq than the one stored
    h = copy.deepcopy(BASE)
    h[2]["seq"] = 3
    assert "lost ack" in kinds(h, BASE_ROWS)


def test_a_storage_duplicate_is_caught():
    rows = BASE_ROWS + [row(1, 4, "p2", "b")]
    assert "storage duplicate" in kinds(BASE, rows)


def test_an_order_violation_is_caught():
    h = copy.deepcopy(BASE)
    h[3], h[8] = h[8], h[3]  # s1 saw 2 before 1
    assert kinds(h, BASE_ROWS) == ["order violation"]


def test_a_delivery_gap_is_caught():
    h = [x for x in BASE if not (x["op"] == "deliver" and x["seq"] == 2)]
    assert kinds(h, BASE_ROWS) == ["delivery gap"]


def test_a_subscriber_that_never_caught_up_is_caught():
    h = [x for x in BASE if x["op"] != "final"]
    assert kinds(h, BASE_ROWS) == ["not caught up"]


def test_a_wrong_delivery_is_caught():
    h = copy.deepcopy(BASE)
    h[3]["id"] = "zzz"
    assert kinds(h, BASE_ROWS) == ["wrong delivery"]


def test_a_refused_publish_that_was_stored_is_caught():
    rows = BASE_ROWS + [row(1, 4, "p1", "d")]
    assert "refused but stored" in kinds(BASE, rows)


def test_a_seq_gap_in_storage_is_caught():
    rows = [row(1, 1, "p1", "a"), row(1, 3, "p1", "c")]
    h = [x for x in BASE if x.get("id") != "b" and x["op"] != "final"]
    assert "seq gap" in kinds(h, rows)


def test_two_acks_apart_for_one_id_are_caught():
    h = copy.deepcopy(BASE) + [op("ok", proc="p2", author="p2", channel=1, id="b", seq=3)]
    assert "acked twice apart" in kinds(h, BASE_ROWS)


def with_epochs(rows, epochs):
    return [dict(x, epoch=e) for x, e in zip(rows, epochs)]


def test_owner_epochs_that_rise_pass():
    r = check(BASE, with_epochs(BASE_ROWS, [5, 5, 9]))
    assert r.violations == []
    assert dict(r.epochs) == {1: {5, 9}}
    # rows from before the epochs were kept are not judged
    assert check(BASE, with_epochs(BASE_ROWS, [None, 9, 9])).violations == []


def test_a_stale_owner_commit_is_caught():
    # seq 3 committed under epoch 5 after seq 2 under epoch 9: the old
    # owner committed after the new one had taken the channel
    r = check(BASE, with_epochs(BASE_ROWS, [5, 9, 5]))
    assert [v["kind"] for v in r.violations] == ["stale owner commit"]
    assert "seq 3" in r.violations[0]["detail"] and "epoch 9" in r.violations[0]["detail"]
