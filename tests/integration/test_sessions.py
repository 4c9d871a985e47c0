"""Sessions, onboarding, fan-out and roles against the real local stack (moto server + Chalice over HTTP).

Liveness (failover, stale browsers, the expiry sweep) runs on an injected clock in
tests/unit/test_session_service_liveness.py: no test here waits for a timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from pbfm_tooling.ai_driver import call_tool
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner, Tab
from web_py.messages import MessageType

pytestmark = pytest.mark.slow

# Events streamed while 4 browsers join (all of them join in its first second: every one onboards
# mid-stream, and the stream passes two snapshots after); the chaos run has more.
STREAMED = 50


@pytest.fixture
def pages(stack: LocalStack) -> Iterator[PageRunner]:
    """Browser tabs running the page's own SessionManager; all closed after the test."""
    with PageRunner(stack.base_url, history_wait_s=1, live_wait_s=5) as runner:
        yield runner


def create(stack: LocalStack, session_id: str) -> dict:
    return call_tool(stack.mcp_url, "webpage_create_session", {"session_id": session_id})


def browser(pages: PageRunner, session_id: str) -> Tab:
    return pages.open(session_id)


def last_seq(stack: LocalStack, session_id: str) -> int:
    return stack.service.store.require_session(session_id, active=False).seq


def test_create_session_is_idempotent(stack: LocalStack, session_id: str) -> None:
    first = create(stack, session_id)
    second = create(stack, session_id)
    assert first["created"] is True and second["created"] is False
    assert first["page_path"] == f"/session/{session_id}"
    assert second["session_id"] == session_id


def test_first_browser_is_master_others_observe_and_cookie_keeps_identity(
        stack: LocalStack, pages: PageRunner, session_id: str) -> None:
    create(stack, session_id)
    a, b = browser(pages, session_id), browser(pages, session_id)
    joined_a = a.join()
    response = b.post("webpage_join_session")
    joined_b = response.json()
    cookie = response.headers["set-cookie"]
    assert f"pbfm_{session_id}=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert joined_a.role == "master" and joined_b["role"] == "observer"
    assert joined_b["master_client_id"] == joined_a.client_id

    again = b.post("webpage_join_session").json()
    assert again["client_id"] == joined_b["client_id"] and again["role"] == "observer" and again["resumed"] is True

    people = call_tool(stack.mcp_url, "webpage_get_session_participants", {"session_id": session_id})
    roles = {p["client_id"]: p["role"] for p in people["participants"]}
    assert roles == {joined_a.client_id: "master", joined_b["client_id"]: "observer"}


def test_price_update_reaches_every_browser_by_s3_reference(
        stack: LocalStack, pages: PageRunner, session_id: str) -> None:
    create(stack, session_id)
    browsers = [browser(pages, session_id) for _ in range(3)]
    for b in browsers:
        b.join()
    result = call_tool(stack.mcp_url, "webpage_update_hash_price_display",
                       {"session_id": session_id, "source": "simulated"})
    assert result["delivered"] == 3 and result["failed"] == 0
    assert result["s3_key"].startswith(f"sessions/{session_id}/prices/")
    for b in browsers:
        b.catch_up(result["seq"])
        assert b.state.price is not None
        assert b.state.price.display_price == result["price"]["display_price"]
        # Everything up to the price, once each, in order (a coalesced participant list may follow).
        assert b.applied[: result["seq"]] == list(range(1, result["seq"] + 1))
        assert len(b.applied) == len(set(b.applied))
    # The document came from S3 through its presigned URL, which the bucket's CORS lets the page read.
    envelope = browsers[0].call("webpage_get_events", after_seq=result["seq"] - 1)["events"][0]
    assert envelope["type"] == "PRICE_UPDATE" and envelope["s3_key"] == result["s3_key"]
    fetched = httpx.get(envelope["url"], headers={"Origin": stack.base_url})
    assert fetched.status_code == 200
    assert fetched.headers["access-control-allow-origin"] == stack.base_url
    assert fetched.json()["display_price"] == result["price"]["display_price"]
    preflight = httpx.options(envelope["url"], headers={"Origin": "http://evil.example",
                                                        "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers


WRITERS, PER_WRITER = 8, 6


def test_eight_concurrent_writers_get_distinct_gapless_sequences(stack: LocalStack, session_id: str) -> None:
    create(stack, session_id)
    seqs: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(PER_WRITER):
            delivery = stack.service.publish(session_id, MessageType.ROLE_CHANGE, payload={
                "master_client_id": "aaaaaaaaaaaa", "previous_master_client_id": None, "reason": "transfer"})
            with lock:
                seqs.append(delivery.seq)

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, WRITERS * PER_WRITER + 1))
    stored = [e.seq for e in stack.service.store.events_after(session_id, 0)]
    assert stored == list(range(1, WRITERS * PER_WRITER + 1))
    assert last_seq(stack, session_id) == WRITERS * PER_WRITER


def test_browsers_joining_while_events_stream_apply_each_once_in_order(
        stack: LocalStack, pages: PageRunner, session_id: str) -> None:
    create(stack, session_id)
    first = browser(pages, session_id)
    first.join()
    first.start()
    done = threading.Event()

    def stream() -> None:
        for i in range(STREAMED):
            layout = {"title": None, "blocks": [{"kind": "text", "text": f"event {i}", "style": "paragraph"}]}
            stack.service.blobs.put_json(f"layouts/{session_id}/{i}.json", layout)
            stack.service.publish(session_id, MessageType.LAYOUT_UPDATE, s3_key=f"layouts/{session_id}/{i}.json")
        done.set()

    writer = threading.Thread(target=stream)
    writer.start()
    joiners: list[Tab] = []
    while not done.is_set():
        if len(joiners) < 4:
            b = browser(pages, session_id)
            b.join()
            b.start()
            joiners.append(b)
        done.wait(0.05)
    writer.join()
    final = 0
    while final != last_seq(stack, session_id):  # until nothing more is appended (e.g. a failover)
        final = last_seq(stack, session_id)
        for b in [first, *joiners]:
            b.catch_up(final)
    assert final >= STREAMED
    for b in [first, *joiners]:
        start = b.applied[0]
        # Exactly once and in order: consecutive from where the browser's snapshot left off.
        assert b.applied == list(range(start, final + 1)), b.client_id
        assert b.state == first.state
    assert first.applied == list(range(1, final + 1))
    assert len(joiners) == 4


def test_ai_transfers_control_and_only_the_master_may_refresh(
        stack: LocalStack, pages: PageRunner, session_id: str) -> None:
    create(stack, session_id)
    master, observer = browser(pages, session_id), browser(pages, session_id)
    master.join()
    observer.join()
    refused = observer.post("webpage_request_price_refresh")
    assert refused.status_code == 403
    seq_before = last_seq(stack, session_id)
    assert master.call("webpage_request_price_refresh")["seq"] == seq_before + 1

    moved = call_tool(stack.mcp_url, "webpage_transfer_control_to_observer",
                      {"session_id": session_id, "client_id": observer.client_id})
    assert moved["previous_master_client_id"] == master.client_id
    assert observer.heartbeat() == "master" and master.heartbeat() == "observer"
    assert master.post("webpage_request_price_refresh").status_code == 403
    master.catch_up(last_seq(stack, session_id))
    assert master.state.master_client_id == observer.client_id


def test_a_deleted_queue_never_stops_the_others(stack: LocalStack, pages: PageRunner, session_id: str) -> None:
    create(stack, session_id)
    healthy, victim = browser(pages, session_id), browser(pages, session_id)
    healthy.join()
    victim.join()
    victim_record = stack.service.store.get_client(session_id, victim.client_id)
    assert victim_record is not None
    stack.service.queues.delete_queue(victim_record.live_queue_url)
    result = call_tool(stack.mcp_url, "webpage_update_hash_price_display", {"session_id": session_id})
    assert (result["delivered"], result["failed"]) == (1, 1)
    healthy.catch_up(last_seq(stack, session_id))
    assert healthy.state.price is not None
    # The victim was marked gone; polling tells it to join again, after which it catches up.
    victim.catch_up(last_seq(stack, session_id))
    assert victim.state.price == healthy.state.price


def test_ending_a_session_notifies_archives_and_deletes_queues(
        stack: LocalStack, pages: PageRunner, session_id: str) -> None:
    create(stack, session_id)
    watcher = browser(pages, session_id)
    watcher.join()
    call_tool(stack.mcp_url, "webpage_update_hash_price_display", {"session_id": session_id})
    record = stack.service.store.get_client(session_id, watcher.client_id)
    assert record is not None
    watcher.catch_up(last_seq(stack, session_id))
    ended = call_tool(stack.mcp_url, "webpage_end_session", {"session_id": session_id, "reason": "done"})
    assert ended["browsers_removed"] == 1
    archive = stack.service.blobs.get_json(ended["archive_key"])
    assert [e["seq"] for e in archive["events"]] == list(range(1, ended["seq"] + 1))
    assert archive["events"][-1]["type"] == "SESSION_ENDED"
    assert not stack.service.queues.exists(record.live_queue_url)
    status = watcher.call("webpage_get_session_status")
    assert status["status"] == "ended"
    assert watcher.post("webpage_poll_queue", queue="live").status_code == 410
    assert watcher.post("webpage_join_session").status_code == 410
    with pytest.raises(RuntimeError, match="ended"):
        call_tool(stack.mcp_url, "webpage_update_hash_price_display", {"session_id": session_id})


def test_recreating_a_browsers_queues_through_mcp(stack: LocalStack, pages: PageRunner, session_id: str) -> None:
    create(stack, session_id)
    b = browser(pages, session_id)
    b.join()
    record = stack.service.store.get_client(session_id, b.client_id)
    assert record is not None
    stack.service.queues.delete_queue(record.history_queue_url)
    info = call_tool(stack.mcp_url, "webpage_create_browser_queues",
                     {"session_id": session_id, "client_id": b.client_id})
    assert info["recreated"] is True
    assert info["history_queue"].endswith("-history.fifo") and len(info["history_queue"]) <= 80
    b.catch_up(info["last_seq"])
