"""The receipt handles a page keeps between heartbeats (web_py/pending_acks.py)."""

from __future__ import annotations

import pytest

from web_py.pending_acks import MAX_ACKS_PER_CALL, PendingAcks


def test_handles_wait_in_arrival_order_each_once() -> None:
    acks = PendingAcks()
    for handle in ("l1", "l2", "l1", "l3"):
        acks.add("live", handle)
    acks.add("history", "h1")
    assert (acks.count(), acks.count("live"), acks.count("history")) == (4, 3, 1)
    assert acks.take() == {"history": ["h1"], "live": ["l1", "l2", "l3"]}
    assert acks.count() == 0 and acks.take() == {}


def test_one_call_carries_at_most_the_limit_history_first() -> None:
    acks = PendingAcks(limit=5)
    for n in range(4):
        acks.add("live", f"l{n}")
    assert not acks.full
    acks.add("history", "h0")
    acks.add("history", "h1")
    assert acks.full
    assert acks.take() == {"history": ["h0", "h1"], "live": ["l0", "l1", "l2"]}
    assert acks.take() == {"live": ["l3"]}


def test_handles_of_a_failed_call_go_back_in_front_of_later_ones() -> None:
    acks = PendingAcks()
    acks.add("live", "old1")
    acks.add("live", "old2")
    taken = acks.take()
    acks.add("live", "new")
    acks.add("live", "old2")  # (redelivered and dropped again meanwhile: still once)
    acks.give_back(taken)
    assert acks.take() == {"live": ["old1", "old2", "new"]}


def test_clear_forgets_everything() -> None:
    acks = PendingAcks()
    acks.add("live", "a")
    acks.add("history", "b")
    acks.clear()
    assert acks.count() == 0 and acks.take() == {}


def test_a_rejoin_forgets_the_live_handles_and_keeps_the_history_ones() -> None:
    acks = PendingAcks()
    acks.add("live", "a")
    acks.add("history", "b")
    acks.forget_live()
    assert acks.take() == {"history": ["b"]}


def test_the_default_limit_fits_the_servers_body_limit_and_a_limit_is_positive() -> None:
    # 50 handles of SQS's longest (2 KiB, the server's ReceiptHandle bound) as JSON stay far below 256 KB.
    assert MAX_ACKS_PER_CALL * (2048 + 3) < 256 * 1024 / 2
    with pytest.raises(ValueError):
        PendingAcks(limit=0)
