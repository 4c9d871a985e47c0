"""The local stack's sweeper thread: what the schedule does in AWS, with no browser request involved.

A stack of its own (the shared one runs without a sweeper, see tests/conftest.py), on short
timings: silent browsers leave the participant list, stale ones are removed with their queues,
one coalesced list is announced, and caps answer 409 with a message a page can show.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner
from tests.conftest import TEST_OVERRIDES
from web_py.messages import MessageType

pytestmark = pytest.mark.slow

OVERRIDES = {
    **TEST_OVERRIDES,
    # moto servers in one process share their state: its own table, bucket (CORS) and queues, so its
    # sweeper never touches the shared stack's sessions nor its bucket's CORS rules.
    "PBFM_TABLE": "sweeper-test-sessions",
    "PBFM_BUCKET": "sweeper-test-assets",
    "PBFM_QUEUE_PREFIX": "sweeper-test",
    "PBFM_HEARTBEAT_INTERVAL": "1",
    "PBFM_HEARTBEAT_TIMEOUT": "3",
    "PBFM_STALE_AFTER": "5",
    "PBFM_PARTICIPANTS_EVERY": "0.2",
    "PBFM_LOCAL_SWEEP_EVERY": "0.3",
    "PBFM_MAX_VIEWERS": "3",
    "PBFM_MAX_TABS_PER_BROWSER": "2",
}


@contextmanager
def own_environment() -> Iterator[None]:
    # A stack writes its PBFM_* settings into os.environ; these caps must not reach later stacks.
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def sweeping() -> Iterator[LocalStack]:
    with own_environment(), LocalStack(overrides=OVERRIDES) as running:
        yield running


def wait_for(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_the_sweeper_removes_browsers_that_left_without_any_request(sweeping: LocalStack) -> None:
    session_id = "sw-" + secrets.token_hex(4)
    sweeping.service.create_session(session_id, None)
    records = []
    with PageRunner(sweeping.base_url) as pages:
        for _ in range(2):
            joined = pages.open(session_id).join()
            record = sweeping.service.store.get_client(session_id, joined.client_id)
            assert record is not None
            records.append(record)
        # Everybody left (no heartbeat, no poll from now on): the sweeper alone cleans up. A removal
        # marks the browser gone before it deletes the queues, so the list empties a moment first.
        wait_for(lambda: not sweeping.service.store.list_clients(session_id))
        queues = [url for r in records for url in (r.live_queue_url, r.history_queue_url)]
        wait_for(lambda: not any(sweeping.service.queues.exists(url) for url in queues), timeout_s=10)
    assert sweeping.service.store.fanout(session_id)[1] == {}


def test_a_silent_browser_leaves_the_list_before_it_is_removed(sweeping: LocalStack) -> None:
    session_id = "sw-" + secrets.token_hex(4)
    sweeping.service.create_session(session_id, None)
    with PageRunner(sweeping.base_url) as pages:
        alive, silent = pages.open(session_id), pages.open(session_id)
        alive_id, silent_id = alive.join().client_id, silent.join().client_id

        def listed(*client_ids: str) -> bool:
            return [p.client_id for p in alive.state.participants] == list(client_ids)

        # The live page runs its real loop (polls, heartbeats every second); the other never calls again.
        alive.wait_until(lambda tab: listed(alive_id, silent_id), timeout_s=60)
        alive.wait_until(lambda tab: listed(alive_id), timeout_s=60)
        record = sweeping.service.store.get_client(session_id, silent_id)
        assert record is not None and record.away  # left out of the list, not yet removed
        wait_for(lambda: not (sweeping.service.store.get_client(session_id, silent_id) or record).active)
        assert listed(alive_id)
    announced = [e for e in sweeping.service.store.events_after(session_id, 0)
                 if e.type == MessageType.PARTICIPANTS.value]
    # Coalesced: a few lists for two joins, one going silent and one removal, not one per change per send.
    assert 2 <= len(announced) <= 4


def test_caps_answer_409_with_a_message(sweeping: LocalStack) -> None:
    session_id = "cap-" + secrets.token_hex(4)
    sweeping.service.create_session(session_id, None)
    with httpx.Client(base_url=sweeping.base_url, timeout=30) as one_browser:
        tabs = [one_browser.post("/api/webpage_join_session", json={"session_id": session_id},
                                 headers={"X-PBFM-Tab": f"tab{n}"}) for n in range(3)]
        assert [t.status_code for t in tabs] == [200, 200, 409]
        assert tabs[2].json()["error"] == "session_full" and "2 tabs" in tabs[2].json()["message"]
    with httpx.Client(base_url=sweeping.base_url, timeout=30) as other, \
            httpx.Client(base_url=sweeping.base_url, timeout=30) as third:
        assert other.post("/api/webpage_join_session", json={"session_id": session_id}).status_code == 200
        refused = third.post("/api/webpage_join_session", json={"session_id": session_id})
        assert refused.status_code == 409 and "full (3 viewers)" in refused.json()["message"]


def test_stopping_the_stack_stops_its_sweeper() -> None:
    with own_environment():
        stack = LocalStack(overrides=OVERRIDES).start()
        sweeper = stack._sweeper
        assert sweeper is not None and sweeper.is_alive()
        wait_for(lambda: stack.sweeps > 0)
        stack.stop()
        assert not sweeper.is_alive()
