"""The public operations. Each docstring is the tool description an AI reads and the API summary.

Importing this module registers every operation with the registry; the adapters do the rest.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from chalice_app.blobs import KEY_PREFIXES, generate_key
from chalice_app.caller import Caller
from chalice_app.errors import InvalidInput, PayloadTooLarge
from chalice_app.models import (
    BrowserQueuesInfo,
    ClientId,
    ControlTransferred,
    Deleted,
    DeliveryReport,
    Events,
    GeneratedKey,
    Heartbeat,
    Joined,
    LayoutContent,
    ParticipantInfo,
    Participants,
    Polled,
    PriceUpdate,
    QueueKind,
    QueueMessage,
    ReceiptHandle,
    SessionCreated,
    SessionEnded,
    SessionId,
    SessionStatus,
    ShortText,
    StoredDocument,
)
from chalice_app.price_sources import PRICE_SOURCE_NAMES, make_price_source
from chalice_app.registry import api_function
from chalice_app.sessions import Participant, SessionService
from web_py.content import Layout
from web_py.messages import MessageType

PriceSourceName = Literal["auto", "figure_markets", "simulated"]
assert set(PRICE_SOURCE_NAMES) == {"auto", "figure_markets", "simulated"}


def _page_path(session_id: str) -> str:
    return f"/session/{session_id}"


def _participant_models(people: list[Participant]) -> list[ParticipantInfo]:
    return [ParticipantInfo(client_id=p.client_id, role=p.role, joined_at=p.joined_at,
                            last_heartbeat_age_s=p.last_heartbeat_age_s) for p in people]


# -- sessions ------------------------------------------------------------------------------------

@api_function(protocols=["mcp", "rest"], rest_needs_token=True)
def webpage_create_session(
    session_id: SessionId | None = None, title: ShortText | None = None, *, service: SessionService
) -> SessionCreated:
    """Create a live webpage session (idempotent).

    Browsers open `/session/{session_id}` to watch it. Creating a session that already exists
    returns it unchanged with `created: false`. Without `session_id` a random id is chosen.
    """
    record, created = service.create_session(session_id, title)
    return SessionCreated(session_id=record.session_id, created=created, page_path=_page_path(record.session_id),
                          last_seq=record.seq, status=record.status)


@api_function(protocols=["rest", "mcp"])
def webpage_get_session_status(session_id: SessionId, *, service: SessionService) -> SessionStatus:
    """Status of a session: whether it is active, its last event sequence, master and participants."""
    session, people = service.participants(session_id)
    return SessionStatus(session_id=session_id, status=session.status, title=session.title, last_seq=session.seq,
                         master_client_id=session.master_client_id, participants=_participant_models(people),
                         created_at=session.created_at)


@api_function(protocols=["rest"])
def webpage_join_session(session_id: SessionId, caller: Caller, *, service: SessionService) -> Joined:
    """Join a session as a browser.

    Sets the signed session cookie that identifies this browser from now on. The first live browser
    becomes master, the others observers. The browser's history queue receives the session's state
    (snapshot and later events) followed by END_OF_HISTORY; its live queue receives every new event.
    A returning browser (valid cookie, same tab id in the X-PBFM-Tab header) keeps its id and
    role; each tab of a browser is its own participant.
    """
    outcome = service.join(session_id, identify=caller.client_in)
    return Joined(session_id=session_id, incarnation=outcome.client.incarnation or None,
                  client_id=outcome.client.client_id, role=outcome.role,
                  master_client_id=outcome.master_client_id, resumed=outcome.resumed,
                  last_seq=outcome.history_last_seq, heartbeat_interval_s=service.settings.heartbeat_interval_s,
                  heartbeat_timeout_s=service.settings.heartbeat_timeout_s)


@api_function(protocols=["mcp"])
def webpage_create_browser_queues(
    session_id: SessionId, client_id: ClientId, *, service: SessionService
) -> BrowserQueuesInfo:
    """Make sure a browser of the session has its live and history queues, recreating them if lost.

    The browser re-enters the fan-out first, then receives the session's history again; it drops
    what it has already applied, so nothing is shown twice.
    """
    if service.store.get_client(session_id, client_id) is None:
        raise InvalidInput(f"No browser {client_id!r} has joined session {session_id!r}.")
    outcome = service.join(session_id, client_id)
    live, history = service.queues.names(session_id, client_id)
    return BrowserQueuesInfo(session_id=session_id, client_id=client_id, live_queue=live, history_queue=history,
                             recreated=not outcome.resumed, last_seq=outcome.history_last_seq)


@api_function(protocols=["mcp"])
def webpage_get_session_participants(session_id: SessionId, *, service: SessionService) -> Participants:
    """The browsers watching a session, with their role and how long since their last heartbeat."""
    session, people = service.participants(session_id)
    return Participants(session_id=session_id, master_client_id=session.master_client_id,
                        participants=_participant_models(people))


@api_function(protocols=["mcp"])
def webpage_transfer_control_to_observer(
    session_id: SessionId, client_id: ClientId, *, service: SessionService
) -> ControlTransferred:
    """Make the given observer the master browser; every page is told the new roles."""
    previous = service.transfer_control(session_id, client_id)
    return ControlTransferred(session_id=session_id, master_client_id=client_id, previous_master_client_id=previous)


@api_function(protocols=["mcp"])
def webpage_end_session(
    session_id: SessionId, reason: ShortText = "ended by the assistant", *, service: SessionService
) -> SessionEnded:
    """End a session: browsers are told, the event log is archived to S3 and all queues are deleted."""
    seq, archive_key, removed = service.end_session(session_id, reason)
    return SessionEnded(session_id=session_id, seq=seq, archive_key=archive_key, browsers_removed=removed)


# -- content -------------------------------------------------------------------------------------

def _publish_price(service: SessionService, session_id: str, source: str) -> PriceUpdate:
    service.store.require_session(session_id)
    quote = make_price_source(source, session_id=session_id).fetch()
    key = generate_key("price", session_id)
    service.blobs.put_json(key, quote.to_dict())
    delivery = service.publish(session_id, MessageType.PRICE_UPDATE, s3_key=key)
    return PriceUpdate(session_id=session_id, seq=delivery.seq, delivered=delivery.delivered,
                       failed=delivery.failed, s3_key=key, price=quote)


@api_function(protocols=["mcp"])
def webpage_update_hash_price_display(
    session_id: SessionId, source: PriceSourceName | None = None, *, service: SessionService
) -> PriceUpdate:
    """Fetch the current HASH-USD price and show it on every browser of the session.

    `source`: "figure_markets" (live exchange data), "simulated", or "auto" (Figure Markets, falling
    back to simulated when it cannot be reached). Defaults to the server's configured source. The
    quote is stored in S3 and a PRICE_UPDATE event referencing it goes to every browser.
    """
    return _publish_price(service, session_id, source or service.settings.price_source)


@api_function(protocols=["rest"])
def webpage_request_price_refresh(session_id: SessionId, caller: Caller, *, service: SessionService) -> PriceUpdate:
    """Ask for a fresh HASH-USD price now (master browser only; observers get 403; at most one per
    few seconds per session, 429 with Retry-After otherwise)."""
    service.claim_price_refresh(session_id, caller.require_client())
    return _publish_price(service, session_id, service.settings.price_source)


def _layout_document(service: SessionService, content: Layout) -> dict[str, object]:
    # LayoutContent has already run the page's own parser: what arrives here every page accepts.
    document = content.to_dict()
    size = len(json.dumps(document))
    limit = service.settings.max_message_bytes
    if size > limit:
        raise PayloadTooLarge(f"content is {size} bytes; the limit is {limit} bytes")
    return document


@api_function(protocols=["mcp"])
def webpage_send_to_browsers(
    session_id: SessionId, content: LayoutContent, *, service: SessionService
) -> DeliveryReport:
    """Show content on every browser of the session, replacing what the page shows below its header.

    Content is a list of blocks: {"kind": "price_card"} (the live HASH price), {"kind": "text",
    "text": "...", "style": "heading"|"paragraph"|"note"}, {"kind": "key_value", "rows": [{"key": "k",
    "value": "v"}]}, {"kind": "chart", "points": [1, 2, 3], "labels": [...]}. All text is shown as
    plain text.
    """
    service.store.require_session(session_id)
    document = _layout_document(service, content)
    key = generate_key("layout", session_id)
    service.blobs.put_json(key, document)
    delivery = service.publish(session_id, MessageType.LAYOUT_UPDATE, s3_key=key)
    return DeliveryReport(session_id=session_id, seq=delivery.seq, delivered=delivery.delivered,
                          failed=delivery.failed, s3_key=key)


@api_function(protocols=["mcp"])
def webpage_store_layout_data(
    session_id: SessionId, content: LayoutContent, *, service: SessionService
) -> StoredDocument:
    """Store a layout in S3 without showing it yet; returns its key and a presigned URL."""
    service.store.require_session(session_id)
    document = _layout_document(service, content)
    key = generate_key("layout", session_id)
    size = service.blobs.put_json(key, document)
    return StoredDocument(s3_key=key, url=service.blobs.presign(key), bytes=size)


@api_function(protocols=["mcp"])
def webpage_store_price_data(
    session_id: SessionId, source: PriceSourceName | None = None, *, service: SessionService
) -> StoredDocument:
    """Fetch the HASH-USD price and store it in S3 without showing it; returns its key and URL."""
    service.store.require_session(session_id)
    quote = make_price_source(source or service.settings.price_source, session_id=session_id).fetch()
    key = generate_key("price", session_id)
    size = service.blobs.put_json(key, quote.to_dict())
    return StoredDocument(s3_key=key, url=service.blobs.presign(key), bytes=size)


DocumentKind = Literal["price", "layout", "component", "dataset"]
assert set(DocumentKind.__args__) <= set(KEY_PREFIXES)  # type: ignore[attr-defined]


@api_function(protocols=["mcp"])
def webpage_generate_s3_key(session_id: SessionId, kind: DocumentKind) -> GeneratedKey:
    """A fresh S3 key for a document of this kind in this session (keys are never reused)."""
    return GeneratedKey(s3_key=generate_key(kind, session_id))


# -- browser transport ---------------------------------------------------------------------------

@api_function(protocols=["rest"])
def webpage_poll_queue(
    session_id: SessionId,
    queue: QueueKind,
    caller: Caller,
    wait_seconds: Annotated[int, Field(ge=0, le=20)] = 20,
    max_messages: Annotated[int, Field(ge=1, le=10)] = 10,
    *,
    service: SessionService,
) -> Polled:
    """Long-poll this browser's own live or history queue (identity from the session cookie).

    Returns up to `max_messages` in order; delete each after applying it. 410 means the queue is
    gone: join the session again.
    """
    raw = service.poll(session_id, caller.require_client(), queue, wait_seconds, max_messages)
    return Polled(messages=[QueueMessage(receipt_handle=h, body=json.loads(b)) for h, b in raw])


def _distinct(receipt_handles: list[str]) -> list[str]:
    # SQS refuses a whole batch that names one receipt twice; refuse it here, as the caller's mistake.
    if len(set(receipt_handles)) != len(receipt_handles):
        raise ValueError("each receipt handle may appear only once")
    return receipt_handles


ReceiptHandleBatch = Annotated[list[ReceiptHandle], Field(min_length=1, max_length=10, json_schema_extra={
    "uniqueItems": True}), AfterValidator(_distinct)]


@api_function(protocols=["rest"])
def webpage_delete_message(
    session_id: SessionId,
    queue: QueueKind,
    receipt_handles: ReceiptHandleBatch,
    caller: Caller,
    *,
    service: SessionService,
) -> Deleted:
    """Acknowledge applied messages on this browser's own queue."""
    deleted = service.delete(session_id, caller.require_client(), queue, receipt_handles)
    return Deleted(deleted=deleted)


@api_function(protocols=["rest"])
def webpage_send_heartbeat(session_id: SessionId, caller: Caller, *, service: SessionService) -> Heartbeat:
    """Tell the server this browser is alive; returns its current role.

    Heartbeats also drive failover: a master silent for longer than the timeout is replaced by the
    longest-connected live observer, and every page receives a ROLE_CHANGE event.
    """
    role, session = service.heartbeat(session_id, caller.require_client())
    return Heartbeat(role=role, master_client_id=session.master_client_id, server_time=service.now(),
                     last_seq=session.seq)


@api_function(protocols=["rest"])
def webpage_get_events(
    session_id: SessionId,
    caller: Caller,
    after_seq: Annotated[int, Field(ge=0)] = 0,
    limit: Annotated[int, Field(ge=1, le=500)] = 100,
    *,
    service: SessionService,
) -> Events:
    """Events after a sequence number, for a browser repairing a gap (fresh presigned URLs)."""
    caller.require_client()
    envelopes, last_seq = service.events_after(session_id, after_seq, limit)
    return Events(events=[e.to_dict() for e in envelopes], last_seq=last_seq)
