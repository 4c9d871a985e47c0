"""Joins at scale on the real local stack (moto server + Chalice over HTTP): the server's work per
join stays constant, and a publish through another process's cache never misses a browser.

Timings are a benchmark's business (bench/joins.py); these tests count the work instead.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from chalice_app.context import build_service
from chalice_app.sessions import SessionService
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.tls import tls_context
from tests.counting import Counting
from web_py.messages import Envelope, MessageType

pytestmark = pytest.mark.slow


@pytest.fixture
def counted(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Counting, Counting]]:
    store, queues = Counting(stack.service.store), Counting(stack.service.queues)
    monkeypatch.setattr(stack.service, "store", store)
    monkeypatch.setattr(stack.service, "queues", queues)
    yield store, queues


def test_the_30th_join_costs_the_server_what_the_2nd_did(stack: LocalStack, session_id: str,
                                                         counted: tuple[Counting, Counting]) -> None:
    store, queues = counted
    stack.service.create_session(session_id, None)
    work = []
    master: str | None = None
    for _ in range(30):
        if master is not None:
            # A live master keeps its role (its heartbeat, as METADATA records it; not counted).
            store._inner.touch_master(session_id, master, time.time())
        store.calls.clear()
        queues.calls.clear()
        with httpx.Client(base_url=stack.base_url, timeout=30, verify=tls_context()) as http:
            response = http.post("/api/webpage_join_session", json={"session_id": session_id})
        assert response.status_code == 200, response.text
        work.append((Counter(store.calls), Counter(queues.calls)))
        master = master or response.json()["client_id"]
    assert all(w == work[1] for w in work[2:]), [w for w in work[2:] if w != work[1]][:1]
    store_calls, queue_calls = work[-1]
    # No Query of the browsers or the fan-out set, and nothing sent to the 29 others.
    assert store_calls["list_clients"] == 0 and store_calls["fanout"] == 0
    assert queue_calls == Counter({"create": 1, "send_all": 1})


def _drain(service: SessionService, session_id: str, client_id: str, queue: str) -> list[int]:
    seqs: list[int] = []
    while batch := service.poll(session_id, client_id, queue, 0, 10):
        seqs.extend(Envelope.from_json(body).seq for _, body in batch)
        service.delete(session_id, client_id, queue, [handle for handle, _ in batch])
    return seqs


def test_a_publish_from_another_container_never_misses_a_browser_that_joined_before_it(
        stack: LocalStack, session_id: str) -> None:
    # Two processes, two fan-out caches, one table: browsers join through the stack's service while
    # another service (a second Lambda container) streams events, its cache warm all along.
    publisher = build_service(stack.settings)
    joiner = stack.service
    joiner.create_session(session_id, None)
    joiner.join(session_id, None)
    done = threading.Event()
    published: list[int] = []

    def stream() -> None:
        for _ in range(40):
            delivery = publisher.publish(session_id, MessageType.ROLE_CHANGE, payload={
                "master_client_id": "aaaaaaaaaaaa", "previous_master_client_id": None, "reason": "transfer"})
            published.append(delivery.seq)
        done.set()

    writer = threading.Thread(target=stream)
    writer.start()
    joined = []
    while not done.is_set() and len(joined) < 12:
        joined.append(joiner.join(session_id, None))
    writer.join()
    assert len(joined) >= 4 and published
    final = published[-1]
    for outcome in joined:
        client_id = outcome.client.client_id
        live = set(_drain(joiner, session_id, client_id, "live"))
        # Every event stored after the history was read reached the live queue: none left to repair.
        missing = set(range(outcome.history_last_seq + 1, final + 1)) - live
        assert not missing, (client_id, outcome.history_last_seq, sorted(missing)[:5])
    assert publisher.fanout_reads < len(published)  # the cache answered most publishes
