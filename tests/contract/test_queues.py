"""The browser queues' contract: MemoryBrowserQueues and SqsBrowserQueues over moto, same tests."""

from __future__ import annotations

import threading
import time

import pytest

from chalice_app.errors import Gone
from chalice_app.ports import QueueMissing
from tests.contract.backend import Backend
from web_py.messages import Envelope, MessageType

HIDDEN = 60  # a visibility timeout no test outlives
CLIENT = "aaaaaaaaaaaa"


def envelope(session_id: str, seq: int) -> Envelope:
    return Envelope(session_id, seq, MessageType.PRICE_UPDATE, 1.0, s3_key=f"sessions/{session_id}/prices/{seq}.json")


def seqs(messages: list[tuple[str, str]]) -> list[int]:
    return [Envelope.from_json(body).seq for _, body in messages]


def test_creating_is_idempotent_and_names_fit_sqs(backend: Backend, session_id: str) -> None:
    queues = backend.queues(HIDDEN)
    pair = queues.create(session_id, CLIENT)
    queues.send(pair.live_url, envelope(session_id, 1), "1")
    assert queues.create(session_id, CLIENT) == pair
    live, history = queues.names(session_id, CLIENT)
    assert pair.live_url.endswith("/" + live) and pair.history_url.endswith("/" + history)
    assert queues.exists(pair.live_url) and queues.exists(pair.history_url)
    # Recreating keeps what the queue holds.
    assert seqs(queues.receive(pair.live_url, 0, 10)) == [1]


def test_messages_come_in_order_in_batches_and_duplicates_are_dropped(backend: Backend, session_id: str) -> None:
    queues = backend.queues(HIDDEN)
    url = queues.create(session_id, CLIENT).history_url
    queues.send_all(url, [envelope(session_id, n) for n in range(1, 24)], "join")
    queues.send(url, envelope(session_id, 24), "24")
    queues.send(url, envelope(session_id, 24), "24")
    received: list[int] = []
    while True:
        batch = queues.receive(url, 0, 10)
        if not batch:
            break
        assert len(batch) <= 10
        received.extend(seqs(batch))
        assert queues.delete(url, [handle for handle, _ in batch]) == len(batch)
    assert received == list(range(1, 25))


def test_a_history_batch_in_flight_holds_back_the_rest_until_deleted(backend: Backend, session_id: str) -> None:
    # A history is one message group: the page drains it in order, a batch at a time.
    queues = backend.queues(HIDDEN)
    url = queues.create(session_id, CLIENT).history_url
    queues.send_all(url, [envelope(session_id, n) for n in (1, 2, 3)], "join")
    first = queues.receive(url, 0, 1)
    assert seqs(first) == [1]
    assert queues.receive(url, 0, 10) == []
    assert queues.delete(url, [first[0][0]]) == 1
    assert seqs(queues.receive(url, 0, 10)) == [2, 3]


def test_a_live_message_in_flight_holds_nothing_back(backend: Backend, session_id: str) -> None:
    # Each live message is a group of its own: the page acknowledges with its next heartbeat, and
    # meanwhile the messages behind an unacknowledged one keep coming (in order, here and on moto).
    queues = backend.queues(HIDDEN)
    url = queues.create(session_id, CLIENT).live_url
    for n in (1, 2, 3):
        queues.send(url, envelope(session_id, n), str(n))
    first = queues.receive(url, 0, 1)
    assert seqs(first) == [1]
    queues.send(url, envelope(session_id, 4), "4")
    rest = queues.receive(url, 0, 10)
    assert seqs(rest) == [2, 3, 4]
    assert queues.receive(url, 0, 10) == []  # all in flight: nothing handed out twice
    assert queues.delete(url, [h for h, _ in first + rest]) == 4


def test_a_receive_may_set_its_own_visibility_timeout(backend: Backend, session_id: str) -> None:
    # The live receive hides its messages for longer than the queue's own (short) timeout.
    queues = backend.queues(0)
    url = queues.create(session_id, CLIENT).live_url
    queues.send(url, envelope(session_id, 1), "1")
    queues.send(url, envelope(session_id, 2), "2")
    assert seqs(queues.receive(url, 0, 1, visibility_timeout_s=HIDDEN)) == [1]
    assert seqs(queues.receive(url, 0, 10)) == [2]  # the queue's 0 s: 2 is visible again at once
    assert seqs(queues.receive(url, 0, 10)) == [2]  # ... while 1 stays hidden for the receive's 60 s
def test_an_unacknowledged_message_is_redelivered_with_a_new_receipt(backend: Backend, session_id: str) -> None:
    queues = backend.queues(0)
    url = queues.create(session_id, CLIENT).live_url
    queues.send(url, envelope(session_id, 1), "1")
    (first_handle, first_body), = queues.receive(url, 0, 10)
    (second_handle, second_body), = queues.receive(url, 0, 10)
    assert first_body == second_body and first_handle != second_handle
    assert queues.delete(url, [second_handle]) == 1
    assert queues.receive(url, 0, 10) == []


def test_a_long_poll_returns_when_a_message_arrives(backend: Backend, session_id: str) -> None:
    queues = backend.queues(HIDDEN)
    url = queues.create(session_id, CLIENT).live_url
    sender = threading.Timer(0.3, lambda: queues.send(url, envelope(session_id, 7), "7"))
    started = time.monotonic()
    sender.start()
    try:
        got = queues.receive(url, 10, 10)
    finally:
        sender.join()
    assert seqs(got) == [7]
    assert time.monotonic() - started < 5


def test_a_deleted_queue_answers_as_missing(backend: Backend, session_id: str) -> None:
    queues = backend.queues(HIDDEN)
    pair = queues.create(session_id, CLIENT)
    queues.send(pair.live_url, envelope(session_id, 1), "1")
    (handle, _), = queues.receive(pair.live_url, 0, 10)
    queues.delete_queue(pair.live_url)
    assert not queues.exists(pair.live_url) and queues.exists(pair.history_url)
    with pytest.raises(QueueMissing):
        queues.send(pair.live_url, envelope(session_id, 2), "2")
    with pytest.raises(QueueMissing):
        queues.send_all(pair.live_url, [envelope(session_id, 2)], "x")
    with pytest.raises(Gone):
        queues.receive(pair.live_url, 0, 10)
    with pytest.raises(Gone):
        queues.delete(pair.live_url, [handle])
    queues.delete_queue(pair.live_url)


def test_an_earlier_receipt_of_a_redelivered_message_still_deletes_it(backend: Backend, session_id: str) -> None:
    # moto's behaviour (AWS documents that only the latest receipt deletes, though the call succeeds);
    # the service relies on neither: a message that comes back is dropped as already applied.
    queues = backend.queues(0)
    url = queues.create(session_id, CLIENT).live_url
    queues.send(url, envelope(session_id, 1), "1")
    queues.send(url, envelope(session_id, 2), "2")
    (stale, _), = queues.receive(url, 0, 1)
    assert seqs(queues.receive(url, 0, 1)) == [1]
    assert queues.delete(url, [stale]) == 1
    assert seqs(queues.receive(url, 0, 10)) == [2]
    assert queues.delete(url, ["not-a-receipt-handle"]) == 0
