"""The public operations. Each docstring is the tool description an AI reads and the API summary.

Importing this module registers every operation with the registry; the adapters do the rest.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field

from chalice_app.blobs import KEY_PREFIXES, generate_key
from chalice_app.caller import Caller
from chalice_app.errors import InvalidInput, NotFound, PayloadTooLarge
from chalice_app.models import (
    Acknowledgements,
    BrowserQueuesInfo,
    ClientId,
    ControlTransferred,
    Deleted,
    DeliveryReport,
    EndReason,
    Events,
    GeneratedKey,
    HashQuote,
    Heartbeat,
    Joined,
    LayoutContent,
    LayoutKey,
    PageView,
    ParticipantInfo,
    Participants,
    Polled,
    PriceUpdate,
    QueueKind,
    QueueMessage,
    ReceiptHandle,
    ReceiveUrl,
    SessionCreated,
    SessionEnded,
    SessionId,
    SessionList,
    SessionStatus,
    StoredDocument,
    Title,
)
from chalice_app.models import ReceiveUrls as ReceiveUrlsModel
from chalice_app.page_links import PageLinks
from chalice_app.page_view import describe, page_view, recent_sessions
from chalice_app.presign import PresignedReceive
from chalice_app.price_sources import PRICE_SOURCE_NAMES, make_price_source
from chalice_app.receive_urls import ReceiveUrls
from chalice_app.registry import ToolHints, api_function
from chalice_app.sessions import Participant, SessionService
from web_py.content import Layout
from web_py.messages import MessageType

PriceSourceName = Literal["auto", "figure_markets", "simulated"]
PriceSourceChoice = Annotated[PriceSourceName | None, Field(
    description='"figure_markets" (live exchange data), "simulated", or "auto" (Figure Markets, falling back to '
                'simulated when it cannot be reached); omitted: the server\'s configured source')]
NewSessionId = Annotated[SessionId | None, Field(
    description="Session id: 1-24 of A-Z a-z 0-9 _ - (it appears in the page URL); omitted: a random one")]
NewTitle = Annotated[Title | None, Field(description="Title shown on the page, plain text; omitted: none")]
# Behaviour hints for MCP hosts (which auto-approve read-only tools and confirm destructive ones).
READ_ONLY = ToolHints(read_only=True, destructive=False, idempotent=True)
READ_ONLY_MARKET = ToolHints(read_only=True, destructive=False, idempotent=False, open_world=True)
ADDITIVE = ToolHints(destructive=False)
assert set(PRICE_SOURCE_NAMES) == {"auto", "figure_markets", "simulated"}


def _page_path(session_id: str) -> str:
    return f"/session/{session_id}"


def _participant_models(people: list[Participant]) -> list[ParticipantInfo]:
    return [ParticipantInfo(client_id=p.client_id, role=p.role, joined_at=p.joined_at,
                            last_heartbeat_age_s=p.last_heartbeat_age_s, in_chat=p.in_chat) for p in people]


# -- sessions ------------------------------------------------------------------------------------

@api_function(protocols=["mcp", "rest"], rest_needs_token=True, title="Create a live page",
              hints=ToolHints(destructive=False, idempotent=True), view=True)
def webpage_create_session(
    session_id: NewSessionId = None, title: NewTitle = None, *, service: SessionService,
    links: PageLinks,
) -> SessionCreated:
    """Create a live webpage session (idempotent); call this first, then give the user `page_url`.

    Everyone who opens `page_url` sees the same page, live. Creating a session that already exists
    returns it unchanged with `created: false`. An id whose session has ended or expired is created
    anew (`created: true`, an empty page from seq 1; pages still open on it follow the new one).
    Without `session_id` a random id is chosen.
    """
    record, created = service.create_session(session_id, title)
    return SessionCreated(session_id=record.session_id, created=created, page_url=links.page_url(record.session_id),
                          page_path=_page_path(record.session_id), last_seq=record.seq, status=record.status)


@api_function(protocols=["rest", "mcp"], title="Session status", hints=READ_ONLY)
def webpage_get_session_status(session_id: SessionId, *, service: SessionService, links: PageLinks
                               ) -> SessionStatus:
    """Status of a session: whether it is active, its last event sequence, master and participants.

    To see what the page shows, call webpage_get_page_state instead.
    """
    session, people = service.participants(session_id)
    return SessionStatus(session_id=session_id, status=session.status, title=session.title,
                         page_url=links.page_url(session_id), last_seq=session.seq,
                         master_client_id=session.master_client_id, participants=_participant_models(people),
                         created_at=session.created_at)


@api_function(protocols=["rest"])
def webpage_join_session(session_id: SessionId, caller: Caller, *, service: SessionService) -> Joined:
    """Join a session as a browser.

    Sets the signed session cookie that identifies this browser from now on. The first live browser
    becomes master, the others observers. The browser's history queue receives the session's state
    (snapshot and later events) followed by END_OF_HISTORY; its live queue receives every new event.
    `receive_urls` are presigned SQS ReceiveMessage GETs for those two queues: the page long-polls
    SQS with them directly (heartbeat answers renew them); `webpage_poll_queue` is the fallback.
    A returning browser (valid cookie, same tab id in the X-PBFM-Tab header) keeps its id and
    role; each tab of a browser is its own participant. A session holds at most PBFM_MAX_VIEWERS
    participants and a browser PBFM_MAX_TABS_PER_BROWSER tabs of it: beyond, 409 `session_full`
    (its message says which; retry later, not at once).
    """
    outcome = service.join(session_id, identify=caller.identity_in, in_chat=caller.in_chat)
    return Joined(session_id=session_id, incarnation=outcome.client.incarnation or None,
                  client_id=outcome.client.client_id, role=outcome.role,
                  master_client_id=outcome.master_client_id, resumed=outcome.resumed,
                  last_seq=outcome.history_last_seq, heartbeat_interval_s=service.settings.heartbeat_interval_s,
                  heartbeat_timeout_s=service.settings.heartbeat_timeout_s,
                  receive_urls=_receive_url_models(service, service.receive_urls_of(outcome.client)))


@api_function(protocols=["mcp"], title="Repair a browser's connection", hints=ToolHints(destructive=False,
                                                                                          idempotent=True))
def webpage_create_browser_queues(
    session_id: SessionId, client_id: ClientId, *, service: SessionService
) -> BrowserQueuesInfo:
    """Reconnect one browser that stopped receiving updates (rarely needed: pages repair themselves).

    Use it when the user says one screen is stuck while others update; `client_id` comes from
    webpage_get_session_participants. The browser is sent the whole page again and skips what it
    already shows, so nothing appears twice.
    """
    if service.store.get_client(session_id, client_id) is None:
        raise InvalidInput(f"No browser {client_id!r} has joined session {session_id!r}.")
    outcome = service.join(session_id, client_id)
    live, history = service.queues.names(session_id, client_id)
    return BrowserQueuesInfo(session_id=session_id, client_id=client_id, live_queue=live, history_queue=history,
                             recreated=not outcome.resumed, last_seq=outcome.history_last_seq)


@api_function(protocols=["mcp"], title="Who is watching", hints=READ_ONLY)
def webpage_get_session_participants(session_id: SessionId, *, service: SessionService) -> Participants:
    """The browsers watching a session, with their role and how long since their last heartbeat."""
    session, people = service.participants(session_id)
    return Participants(session_id=session_id, master_client_id=session.master_client_id,
                        participants=_participant_models(people))


@api_function(protocols=["mcp"], title="Hand control to another browser", hints=ToolHints(destructive=False))
def webpage_transfer_control_to_observer(
    session_id: SessionId, client_id: ClientId, *, service: SessionService
) -> ControlTransferred:
    """Make the given observer the master browser; every page is told the new roles."""
    previous = service.transfer_control(session_id, client_id)
    return ControlTransferred(session_id=session_id, master_client_id=client_id, previous_master_client_id=previous)


@api_function(protocols=["mcp"], title="End the session",
              hints=ToolHints(destructive=True, idempotent=False))
def webpage_end_session(
    session_id: SessionId, reason: EndReason = "ended by the assistant", *, service: SessionService
) -> SessionEnded:
    """End a session for good: every page shows the reason and stops updating; it cannot be reopened.

    The event log is archived to S3 and every browser's queues are deleted. Ask the user first.
    """
    seq, archive_key, removed = service.end_session(session_id, reason)
    return SessionEnded(session_id=session_id, seq=seq, archive_key=archive_key, browsers_removed=removed)


# -- content -------------------------------------------------------------------------------------

def _publish_price(service: SessionService, session_id: str, source: str) -> PriceUpdate:
    service.store.require_session(session_id)
    quote = make_price_source(source, session_id=session_id).fetch()
    key = generate_key("price", session_id)
    document = quote.to_dict()
    service.blobs.put_json(key, document)
    delivery = service.publish(session_id, MessageType.PRICE_UPDATE, s3_key=key, document=document)
    return PriceUpdate(session_id=session_id, seq=delivery.seq, delivered=delivery.delivered,
                       failed=delivery.failed, s3_key=key, price=quote)


@api_function(protocols=["mcp"], title="Show the HASH-USD price",
              hints=ToolHints(destructive=False, open_world=True), view=True)
def webpage_update_hash_price_display(
    session_id: SessionId, source: PriceSourceChoice = None, *, service: SessionService
) -> PriceUpdate:
    """Fetch the current HASH-USD price and show it on every browser of the session (the price card).

    Call it whenever the page should show a fresh price. To only read a price without changing any
    page, call webpage_get_hash_price.
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


# Not destructive: the previous layout stays stored and in the log, and can be shown again by key.
@api_function(protocols=["mcp"], title="Show content on the page", hints=ADDITIVE, view=True)
def webpage_send_to_browsers(
    session_id: SessionId, content: LayoutContent, *, service: SessionService
) -> DeliveryReport:
    """Show content on every browser of the session, replacing what the page shows below its header.

    The result's `s3_key` shows the same layout again later (webpage_show_stored_layout).

    Content is a list of blocks: {"kind": "price_card"} (the live HASH price), {"kind": "text",
    "text": "...", "style": "heading"|"paragraph"|"note"}, {"kind": "key_value", "rows": [{"key": "k",
    "value": "v"}]}, {"kind": "chart", "points": [1, 2, 3], "labels": [...]}. All text is shown as
    plain text.
    """
    service.store.require_session(session_id)
    document = _layout_document(service, content)
    key = generate_key("layout", session_id)
    service.blobs.put_json(key, document)
    delivery = service.publish(session_id, MessageType.LAYOUT_UPDATE, s3_key=key, document=document)
    return DeliveryReport(session_id=session_id, seq=delivery.seq, delivered=delivery.delivered,
                          failed=delivery.failed, s3_key=key)


@api_function(protocols=["mcp"], title="Prepare a layout", hints=ADDITIVE)
def webpage_store_layout_data(
    session_id: SessionId, content: LayoutContent, *, service: SessionService
) -> StoredDocument:
    """Check and store a layout without showing it; show it later with webpage_show_stored_layout.

    Useful to prepare several views and switch between them by key.
    """
    service.store.require_session(session_id)
    document = _layout_document(service, content)
    key = generate_key("layout", session_id)
    size = service.blobs.put_json(key, document)
    return StoredDocument(s3_key=key, url=service.blobs.presign(key), bytes=size)


@api_function(protocols=["mcp"], title="Save a HASH-USD quote", hints=ToolHints(destructive=False, open_world=True))
def webpage_store_price_data(
    session_id: SessionId, source: PriceSourceChoice = None, *, service: SessionService
) -> StoredDocument:
    """Fetch the HASH-USD price and save it as a document of the session without showing it.

    Returns its key and a download URL (e.g. to keep a record). To just read the price, call
    webpage_get_hash_price; to show it, webpage_update_hash_price_display.
    """
    service.store.require_session(session_id)
    quote = make_price_source(source or service.settings.price_source, session_id=session_id).fetch()
    key = generate_key("price", session_id)
    size = service.blobs.put_json(key, quote.to_dict())
    return StoredDocument(s3_key=key, url=service.blobs.presign(key), bytes=size)


DocumentKind = Annotated[Literal["price", "layout", "component", "dataset"], Field(
    description="What kind of document the key is for")]
assert set(get_args(get_args(DocumentKind)[0])) <= set(KEY_PREFIXES)


@api_function(protocols=["mcp"], title="Reserve a document key",
              hints=ToolHints(read_only=True, destructive=False, idempotent=False))
def webpage_generate_s3_key(session_id: SessionId, kind: DocumentKind) -> GeneratedKey:
    """A fresh S3 key for a document of this kind in this session (keys are never reused).

    Rarely needed: the store and show tools choose their own keys.
    """
    return GeneratedKey(s3_key=generate_key(kind, session_id))


@api_function(protocols=["mcp"], title="Show a stored layout", hints=ADDITIVE, view=True)
def webpage_show_stored_layout(session_id: SessionId, s3_key: LayoutKey, *, service: SessionService
                               ) -> DeliveryReport:
    """Show a layout stored earlier (by webpage_store_layout_data or webpage_send_to_browsers) again.

    `s3_key` is the key one of those returned; it must belong to this session.
    """
    service.store.require_session(session_id)
    if not s3_key.startswith(KEY_PREFIXES["layout"].format(sid=session_id)):
        raise InvalidInput(f"{s3_key!r} is not a layout of session {session_id!r}; use a key that session's "
                           "webpage_store_layout_data or webpage_send_to_browsers returned.")
    if s3_key not in service.blobs.list_keys(s3_key):
        raise NotFound(f"No stored layout {s3_key!r}.")
    # Stored documents are immutable; parsing it again guarantees every page accepts it.
    Layout.from_dict(service.blobs.get_json(s3_key))
    delivery = service.publish(session_id, MessageType.LAYOUT_UPDATE, s3_key=s3_key)
    return DeliveryReport(session_id=session_id, seq=delivery.seq, delivered=delivery.delivered,
                          failed=delivery.failed, s3_key=s3_key)


# -- reading what the page shows -----------------------------------------------------------------

@api_function(protocols=["mcp"], title="Read what the page shows", hints=READ_ONLY, text=describe, view=True)
def webpage_get_page_state(session_id: SessionId, *, service: SessionService, links: PageLinks) -> PageView:
    """Exactly what every browser of the session shows now: price card, content blocks, who watches.

    Call it to check what you published or to describe the page to the user. Changes nothing.
    """
    return page_view(service, session_id, links)


@api_function(protocols=["mcp"], title="List live pages", hints=READ_ONLY)
def webpage_list_sessions(
    limit: Annotated[int, Field(ge=1, le=100, description="At most this many sessions (1-100)")] = 20,
    *, service: SessionService, links: PageLinks,
) -> SessionList:
    """The live sessions, newest first, with their page URLs (ended and expired ones are left out)."""
    return recent_sessions(service, limit, links)


@api_function(protocols=["mcp"], title="Read the HASH-USD price", hints=READ_ONLY_MARKET)
def webpage_get_hash_price(source: PriceSourceChoice = None, *, service: SessionService) -> HashQuote:
    """The current HASH-USD quote (bid, ask, 24h change, volume); shows nothing on any page.

    To put it on a page, call webpage_update_hash_price_display.
    """
    return HashQuote(price=make_price_source(source or service.settings.price_source).fetch())


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

    Returns up to `max_messages` in order; acknowledge them once applied (the next heartbeat's
    `acks`: live messages stay invisible for several heartbeat intervals meanwhile). 410 means the
    queue is gone: join the session again.
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
    heartbeat: bool = False,
    *,
    service: SessionService,
) -> Deleted:
    """Acknowledge applied messages on this browser's own queue, at once.

    The page acknowledges with its heartbeat instead (`webpage_send_heartbeat`'s `acks`: one call
    per interval however many messages); this remains for clients that delete as they go. With
    `heartbeat: true` it also counts as this browser's heartbeat and answers what the heartbeat would.
    """
    client_id = caller.require_client()
    deleted = service.delete(session_id, client_id, queue, receipt_handles)
    return Deleted(deleted=deleted, heartbeat=_heartbeat(service, session_id, client_id) if heartbeat else None)


@api_function(protocols=["rest"])
def webpage_send_heartbeat(
    session_id: SessionId, caller: Caller, acks: Acknowledgements | None = None, *, service: SessionService
) -> Heartbeat:
    """Tell the server this browser is alive; returns its current role and fresh receive URLs.

    `acks` carries the receipt handles of the messages applied since the last heartbeat (live and
    history, at most 50 in all): they are deleted from this browser's queues, so one call per
    heartbeat interval acknowledges everything. A live message stays invisible for several
    intervals after it is received, so it is not handed out again while its handle waits here.

    Heartbeats also drive failover: a master silent for longer than the timeout is replaced by the
    longest-connected live observer, and every page receives a ROLE_CHANGE event.
    """
    client_id = caller.require_client()
    beat = _heartbeat(service, session_id, client_id)
    if acks is not None:
        beat.acknowledged = sum(service.delete(session_id, client_id, queue, handles)
                                for queue, handles in (("history", acks.history), ("live", acks.live)) if handles)
    return beat


def _heartbeat(service: SessionService, session_id: str, client_id: str) -> Heartbeat:
    role, session = service.heartbeat(session_id, client_id)
    return Heartbeat(role=role, master_client_id=session.master_client_id, server_time=service.now(),
                     last_seq=session.seq, receive_urls=_receive_url_models(service, service.receive_urls(
                         session_id, client_id)))


def _receive_url_models(service: SessionService, urls: ReceiveUrls | None) -> ReceiveUrlsModel | None:
    if urls is None:
        return None
    now = int(service.now())

    def one(signed: PresignedReceive) -> ReceiveUrl:
        return ReceiveUrl(url=signed.url, expires_at=signed.expires_at, expires_in_s=max(0, signed.expires_at - now))

    return ReceiveUrlsModel(live=one(urls.live), history=one(urls.history))


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
