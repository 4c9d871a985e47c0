"""Incarnations end to end on the local stack (moto's DynamoDB, SQS and S3, the Chalice app over HTTP).

A session id re-created after expiry (its METADATA's TTL passed) or after its end works at
once, and a page whose saved state belongs to the earlier incarnation discards it — even when the
new log has reached the same seq.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from boto3.dynamodb.types import TypeSerializer

from chalice_app.event_store import DynamoEventStore
from pbfm_tooling.http_transport import HttpxTransport
from pbfm_tooling.local_stack import LocalStack
from tests.browser.stack_client import mcp_call, rest_call
from tests.conftest import TEST_OVERRIDES
from web_py.session_manager import MemoryStore, SessionManager


@pytest.fixture(scope="module")
def own_stack() -> Iterator[LocalStack]:
    """A stack with its own table, bucket and queue prefix, for items written by hand: moto servers in one
    process share state (the stack gives the PBFM_* environment back when it stops)."""
    own = secrets.token_hex(3)
    overrides = {**TEST_OVERRIDES, "PBFM_TABLE": f"inc-{own}",
                 "PBFM_BUCKET": f"inc-{own}", "PBFM_QUEUE_PREFIX": f"inc{own}"}
    with LocalStack(overrides=overrides) as running:
        yield running


async def follow(page: SessionManager, until_seq: int, polls: int = 20) -> None:
    if page.joined is None:
        await page.connect()
    for _ in range(polls):
        if page.state.last_seq >= until_seq and page.processor.phase == "live":
            return
        await page.poll_once()
    raise AssertionError(f"stuck at {page.state.last_seq}, wanted {until_seq}")


def test_the_spec_reproduction_on_the_local_stack(own_stack: LocalStack) -> None:
    base = own_stack.base_url
    sid = "ex65"
    assert mcp_call(base, "webpage_create_session", session_id=sid)["created"] is True
    with httpx.Client(base_url=base, timeout=30) as browser:
        first = browser.post("/api/webpage_join_session", json={"session_id": sid}).json()
        for _ in range(65):
            mcp_call(base, "webpage_update_hash_price_display", session_id=sid)
        own_stack.expire_session(sid)
        assert browser.post("/api/webpage_join_session", json={"session_id": sid}).status_code == 404
        assert mcp_call(base, "webpage_create_session", session_id=sid)["created"] is True
        # The next send works, and the new log starts at 1.
        assert mcp_call(base, "webpage_update_hash_price_display", session_id=sid)["seq"] == 1
        joined = browser.post("/api/webpage_join_session", json={"session_id": sid})
        assert joined.status_code == 200, joined.text
        again = joined.json()
        assert again["incarnation"] != first["incarnation"] and again["client_id"] != first["client_id"]
        events = browser.post("/api/webpage_get_events", json={"session_id": sid, "after_seq": 0, "limit": 500}).json()
        # The price (1) and the join's ROLE_CHANGE (2); a coalesced PARTICIPANTS list may follow.
        seqs = [e["seq"] for e in events["events"]]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2
        assert {e["incarnation"] for e in events["events"]} == {again["incarnation"]}


def test_a_page_discards_saved_state_of_an_earlier_incarnation(stack: LocalStack, session_id: str) -> None:
    base = stack.base_url
    rest_call(base, "webpage_create_session", session_id=session_id)
    old_price = mcp_call(base, "webpage_update_hash_price_display", session_id=session_id)["price"]

    async def scenario() -> None:
        store = MemoryStore()
        page = SessionManager(session_id, HttpxTransport(base), store=store, history_wait_s=1, live_wait_s=1)
        # Price (1), ROLE_CHANGE (2), perhaps a coalesced PARTICIPANTS list (an acknowledgement that
        # doubled as a heartbeat announces it): the page shows that, saved.
        await follow(page, 2)
        saved = page.state.last_seq
        assert saved >= 2 and page.state.price is not None
        old_incarnation = page.incarnation
        mcp_call(base, "webpage_end_session", session_id=session_id, reason="over")
        rest_call(base, "webpage_create_session", session_id=session_id)
        for _ in range(saved - 1):
            new_price = mcp_call(base, "webpage_update_hash_price_display", session_id=session_id)["price"]
        assert new_price != old_price

        # A reload: same cookies, same sessionStorage. With this join's ROLE_CHANGE the new log
        # reaches the saved seq, so sequence numbers alone cannot tell the saved state is stale.
        reloaded = SessionManager(session_id, HttpxTransport(base, cookies=page.http.cookies), store=store,
                                  history_wait_s=1, live_wait_s=1)
        assert reloaded.state.last_seq == saved and reloaded.incarnation == old_incarnation
        joined = await reloaded.connect()
        assert joined.incarnation != old_incarnation and joined.last_seq == saved
        assert reloaded.metrics.discarded_states == 1
        await follow(reloaded, saved)
        assert reloaded.applied_seqs[0] == 1 or reloaded.metrics.applied_from_history >= 1
        assert reloaded.state.price is not None
        assert reloaded.state.price.to_dict() == new_price
        assert reloaded.view.connection == "live"
        # And what it saves now belongs to the new incarnation.
        assert SessionManager(session_id, HttpxTransport(base), store=store).incarnation == joined.incarnation

    asyncio.run(scenario())


def test_a_session_stored_before_incarnations_keeps_working_and_is_replaced_cleanly(own_stack: LocalStack) -> None:
    """Items written before incarnations existed (an older deployment's table, an old state directory):
    METADATA without ``incarnation``, ``EVENT#{seq}`` and ``FANOUT#{cid}`` keys. They still read, append
    and fan out; a re-creation after the end reads none of them."""
    store = own_stack.service.store
    assert isinstance(store, DynamoEventStore)
    sid, table = "legacy-" + secrets.token_hex(3), own_stack.settings.table_name
    now = time.time()
    legacy = [
        {"PK": f"SESSION#{sid}", "SK": "METADATA", "session_id": sid, "status": "active", "seq": 1,
         "created_at": Decimal(repr(now)), "snapshot_seq": 0, "expires_at": int(now + 3600), "fanout_version": 1,
         "last_sweep": 0, "master_heartbeat": 0, "roster_version": 0, "roster_announced": 0,
         "roster_announced_at": 0, "roster_seq": 0},
        {"PK": f"SESSION#{sid}", "SK": "EVENT#0000000001", "type": "PRICE_UPDATE", "ts": Decimal(repr(now)),
         "s3_key": "sessions/x/prices/1.json", "expires_at": int(now + 3600)},
        {"PK": f"SESSION#{sid}", "SK": "FANOUT#aaaaaaaaaaaa", "url": "https://q/a", "expires_at": int(now + 3600)},
    ]
    serializer = TypeSerializer()
    for item in legacy:
        store._db.put_item(TableName=table, Item={k: serializer.serialize(v) for k, v in item.items()})

    assert store.require_session(sid).incarnation == ""
    assert [(e.seq, e.incarnation) for e in store.events_after(sid, 0)] == [(1, "")]
    assert store.fanout(sid) == (1, {"aaaaaaaaaaaa": "https://q/a"})
    appended = store.append(sid, "PRICE_UPDATE", "sessions/x/prices/2.json", None, 3600)
    assert (appended.event.seq, appended.event.incarnation) == (2, "")
    assert store.require_session(sid).seq == 2  # the hint advances for a session without incarnation
    envelope = own_stack.service.envelope(sid, appended.event, with_url=False)
    assert "incarnation" not in envelope.to_dict()  # what a page of that time reads

    store.mark_ended(sid)
    record, created = own_stack.service.create_session(sid, None)
    assert created and record.incarnation
    assert store.events_after(sid, 0) == [] and store.fanout(sid) == (0, {})
    assert store.append(sid, "PRICE_UPDATE", None, None, 3600).event.seq == 1
    # The old log is still there under the legacy keys, read only when asked for by its incarnation.
    assert [e.seq for e in store.events_after(sid, 0, incarnation="")] == [1, 2]
