"""What several figures share: sessions, page tabs registered in bulk, history seeded fast."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from chalice_app import cookies
from chalice_app.blobs import generate_key
from chalice_app.event_store import ClientRecord, DynamoEventStore, _event_sk, _to_item
from chalice_app.price_sources import SimulatedSource
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner, Tab
from pbfm_tooling.tls import tls_context
from web_py import page_state
from web_py.messages import BY_REFERENCE, MessageType

DDB_BATCH = 25


def new_session(stack: LocalStack, prefix: str = "b") -> str:
    session_id = f"{prefix}-{secrets.token_hex(5)}"
    stack.service.create_session(session_id, "bench")
    return session_id


def last_seq(stack: LocalStack, session_id: str) -> int:
    return stack.service.store.require_session(session_id, active=False).seq


def price_documents(stack: LocalStack, session_id: str, count: int, seed: int = 7) -> list[str]:
    """``count`` price quotes stored in S3 (a pool events refer to; keys are immutable)."""
    source = SimulatedSource(seed=seed)
    keys = []
    for _ in range(count):
        key = generate_key("price", session_id)
        stack.service.blobs.put_json(key, source.fetch().to_dict())
        keys.append(key)
    return keys


def publish_price(stack: LocalStack, session_id: str, key: str) -> Any:
    return stack.service.publish(session_id, MessageType.PRICE_UPDATE, s3_key=key)


def seed_history(stack: LocalStack, session_id: str, count: int, *, pool: int = 50,
                 progress: Callable[[int], None] | None = None) -> int:
    """Append ``count`` PRICE_UPDATE events fast, with the server's own snapshots on the way.

    Events go in by DynamoDB batch writes in the event store's own item format (a publish to a
    session without browsers writes the same item, ~4 calls each: too slow for 10,000). Every
    ``snapshot_every`` events the server's ``take_snapshot`` runs, exactly as ``publish`` does.
    """
    service, settings = stack.service, stack.settings
    keys = price_documents(stack, session_id, pool)
    start = last_seq(stack, session_id)
    store = service.store
    # Seeding writes the DynamoDB store's own item format: the stack's store is always that one.
    assert isinstance(store, DynamoEventStore)
    db = store._db
    incarnation = store.require_session(session_id).incarnation
    seq = start
    while seq < start + count:
        chunk_end = min(start + count, (seq // settings.snapshot_every + 1) * settings.snapshot_every)
        items = []
        now = time.time()
        for n in range(seq + 1, chunk_end + 1):
            items.append(_to_item({
                "PK": f"SESSION#{session_id}", "SK": _event_sk(n, incarnation), "type": MessageType.PRICE_UPDATE.value,
                "ts": _decimal(now), "s3_key": keys[n % pool],
                "expires_at": int(now + settings.session_ttl_s),
            }))
        for i in range(0, len(items), DDB_BATCH):
            requests = [{"PutRequest": {"Item": item}} for item in items[i : i + DDB_BATCH]]
            pending: dict[str, Any] = {settings.table_name: requests}
            while pending:
                pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        store._advance_hint(session_id, chunk_end, incarnation)
        seq = chunk_end
        if seq % settings.snapshot_every == 0:
            service.take_snapshot(service.store.require_session(session_id))
        if progress is not None:
            progress(seq - start)
    return seq


def _decimal(value: float) -> Any:
    from decimal import Decimal

    return Decimal(repr(value))


def reference_state(stack: LocalStack, session_id: str) -> page_state.PageState:
    """The state a full replay of the whole log gives (what snapshot + tail must equal)."""
    service = stack.service
    state = page_state.PageState()
    for event in service.store.events_after(session_id, 0):
        envelope = service.envelope(session_id, event, with_url=False)
        document = service.blobs.get_json(event.s3_key) if envelope.type in BY_REFERENCE and event.s3_key else None
        state = page_state.apply(state, envelope, document)
    return state


def browser_http(stack: LocalStack, *, timeout: float = 40.0) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, timeout=timeout, verify=tls_context())


def register_bulk(stack: LocalStack, pages: PageRunner, session_id: str, count: int) -> list[Tab]:
    """``count`` tabs joined to the session without the O(N²) PARTICIPANTS fan-out of ``count`` real joins.

    Each gets its queues and CLIENT item directly (what ``join`` does first), a signed cookie and a
    tab id, and then joins over REST (the page's own ``connect``), which resumes it: history
    (END_OF_HISTORY at least) arrives as for anyone. Their loops are not started yet.
    """
    service, settings = stack.service, stack.settings
    session = service.store.require_session(session_id)
    tabs = []
    for _ in range(count):
        # The server's own identity scheme: a signed browser id in the cookie, the client id derived
        # from it and the tab id the page sends as X-PBFM-Tab.
        browser_id, tab_id = cookies.new_browser_id(), secrets.token_hex(8)
        client_id = cookies.client_id_for(settings.cookie_secret, session_id, browser_id, tab_id,
                                          session.incarnation)
        pair = service.queues.create(session_id, client_id)
        now = time.time()
        service.store.put_client(ClientRecord(
            session_id=session_id, client_id=client_id, status="active", joined_at=now, last_heartbeat=now,
            live_queue_url=pair.live_url, history_queue_url=pair.history_url, expires_at=session.expires_at,
            incarnation=session.incarnation,
        ))
        value = cookies.issue(settings.cookie_secret, session_id, browser_id, max_age_s=3600, secure=False,
                              incarnation=session.incarnation)
        name, _, rest = value.partition("=")
        jar = httpx.Cookies()
        jar.set(name, rest.split(";", 1)[0])
        tab = pages.open(session_id, cookies=jar, tab_id=tab_id)
        joined = tab.join()
        assert joined.client_id == client_id and joined.resumed, joined
        tabs.append(tab)
    return tabs
