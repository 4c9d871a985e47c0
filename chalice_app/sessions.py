"""The session service: onboarding, fan-out, roles and liveness, cleanup.

All session behaviour lives here, over three small ports (events, queues, blobs: ``ports.py``).
Operations receive it by injection; it never sees HTTP, MCP or boto3. Time comes from the injected
``clock``, so liveness (failover, stale browsers, expiry) is testable without waiting.

Costs that must not grow with a session's size stay off the paths browsers call often:

- a join or a removal only counts a change of the participant list (``bump_roster``, O(1)); the
  list itself goes out coalesced, at most once per ``participants_every_s``, as one PARTICIPANTS
  event, by whoever finds it due: the sweep, or a heartbeat (Lambda has no timers of its own);
- a heartbeat does O(1) work: it sees a silent master on METADATA (no Query) and only then fails
  over; stale browsers are removed by the sweep alone (the schedule in AWS, a thread locally);
- a publish reads the fan-out set from a per-process cache, checked against the version the
  publish's own UpdateItem returns: a Query only after the set changed.

A session id created again after it expired or ended is a new incarnation (``SessionRecord.incarnation``):
the service keeps to the current one's browsers, fan-out set, counters and events, so nothing of an
earlier life of the id (its browsers' places, roles, queues or log) carries over; browsers still
registered in an earlier one lose their queues when the id is created again and join anew.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chalice_app.blobs import generate_key
from chalice_app.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, TooManyRequests, UpstreamError
from chalice_app.ports import (
    BlobStore,
    BrowserQueues,
    ClientRecord,
    EventStore,
    QueueMissing,
    SessionRecord,
    StoredEvent,
)
from chalice_app.receive_urls import ReceiveUrls, ReceiveUrlSigner
from chalice_app.roles import Role
from chalice_app.settings import Settings
from web_py import page_state
from web_py.messages import BY_REFERENCE, CLIENT_ID_LENGTH, Envelope, MessageType, end_of_history

log = logging.getLogger(__name__)
_ID_ALPHABET = string.ascii_lowercase + string.digits
QUEUE_URL_CACHE = 4096
FANOUT_CACHE = 1024
# SQS deletes at most ten receipts per DeleteMessageBatch.
DELETE_BATCH = 10
# Stale browsers are removed a few at a time, with a pause between: other sessions' requests
# share the process (locally, moto's too) and must not wait behind a long removal.
REMOVAL_BATCH = 10
REMOVAL_PAUSE_S = 0.02
# Longer than a join can take between taking its place and listing its browser (the API's Lambda
# timeout is 30 s): the sweep's recount leaves a place taken this recently alone.
PLACE_IN_FLIGHT_S = 60.0


class SessionFull(Conflict):
    """A join over the session's or the browser's cap (409: the session's state, not the request rate)."""

    code = "session_full"


def _counter_scope(session: SessionRecord) -> str:
    # Counters are per incarnation of a session id: an expired or ended session's items outlive it.
    # (Sessions from before incarnations are told apart by their creation time.)
    return session.incarnation or repr(session.created_at)


def viewers_counter(session: SessionRecord) -> str:
    return f"{_counter_scope(session)}#viewers"


def tabs_counter(session: SessionRecord, browser_id: str) -> str:
    return f"{_counter_scope(session)}#tabs#{browser_id}"


def inline_size(document: dict[str, Any]) -> int:
    """Bytes the document adds to a message (compact JSON, as ``Envelope.to_json`` writes it)."""
    return len(json.dumps(document, separators=(",", ":")).encode("utf-8"))


def new_client_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(CLIENT_ID_LENGTH))


class Sent(Enum):
    OK = "ok"
    QUEUE_GONE = "queue_gone"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    seq: int
    delivered: int
    failed: int
    failed_client_ids: tuple[str, ...]


@dataclass(frozen=True)
class JoinOutcome:
    client: ClientRecord
    role: Role
    master_client_id: str | None
    resumed: bool
    history_last_seq: int


@dataclass(frozen=True)
class Participant:
    client_id: str
    role: Role
    joined_at: float
    last_heartbeat_age_s: float
    in_chat: bool = False


class SessionService:
    def __init__(self, settings: Settings, store: EventStore, queues: BrowserQueues, blobs: BlobStore,
                 clock: Callable[[], float] = time.time, *, receive_signer: ReceiveUrlSigner | None = None) -> None:
        self.settings = settings
        # None: no presigned receives (in-memory backends); pages then poll through us.
        self.receive_signer = receive_signer
        self.store = store
        self.queues = queues
        self.blobs = blobs
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fanout")
        self._queue_urls: dict[tuple[str, str], tuple[str, str]] = {}
        self._queue_urls_lock = threading.Lock()
        # session id -> (fan-out version, client id -> live queue URL), as last read by this process.
        # (session id, incarnation) -> (fan-out version, client id -> live queue URL), as last read
        # by this process. By incarnation: a re-created session id counts its versions from 0 again.
        self._fanout: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
        self._fanout_lock = threading.Lock()
        self.fanout_reads = 0  # Queries of the fan-out set (tests and benchmarks read it)

    # -- sessions ------------------------------------------------------------------------------

    def create_session(self, session_id: str | None, title: str | None) -> tuple[SessionRecord, bool]:
        sid = session_id or "s-" + secrets.token_hex(6)
        record, created = self.store.create_session(sid, title, self.settings.session_ttl_s)
        if created:
            self._retire_earlier_incarnations(record)
        return record, created

    def _retire_earlier_incarnations(self, session: SessionRecord) -> None:
        """Browsers of an earlier incarnation of this id (expired before any sweep, or ended) lose
        their queues now: a page still polling them is told to join again, into the new one."""
        for client in self.store.list_clients(session.session_id):
            if client.incarnation != session.incarnation:
                self._forget_queues(session.session_id, client.client_id)
                self.store.mark_client_gone(session.session_id, client.client_id)
                self.queues.delete_queue(client.live_queue_url)
                self.queues.delete_queue(client.history_queue_url)

    def _clients(self, session: SessionRecord) -> list[ClientRecord]:
        """The active browsers of the session's current incarnation, longest-connected first."""
        return [c for c in self.store.list_clients(session.session_id) if c.incarnation == session.incarnation]

    def participants(self, session_id: str) -> tuple[SessionRecord, list[Participant]]:
        session = self.store.require_session(session_id, active=False)
        now = self._clock()
        clients = self._clients(session) if session.active else []
        return session, [
            Participant(c.client_id, Role.of(c.client_id, session.master_client_id), c.joined_at,
                        round(now - c.last_heartbeat, 3), c.in_chat)
            for c in clients
        ]

    # -- joining -------------------------------------------------------------------------------

    def join(self, session_id: str, known_client_id: str | None = None, browser_id: str | None = None, *,
             identify: Callable[[str], tuple[str, str | None]] | None = None, in_chat: bool = False) -> JoinOutcome:
        """Register a browser; its live queue enters the fan-out before history is read.

        O(1) store calls whatever the session's size: no Query, no announcement to the others (the
        participant list goes out coalesced, later). A new participant takes a place under the
        session's cap and its browser's tab cap first, so a refused join creates nothing.
        ``identify`` gives (client id, browser id) in the session's current incarnation; a record
        of another incarnation of the id is never resumed. ``in_chat``: the session view inside an AI
        chat, which never becomes master by itself.
        """
        session = self.store.require_session(session_id)
        if identify is not None:
            known_client_id, browser_id = identify(session.incarnation)
        now = self._clock()
        existing = self.store.get_client(session_id, known_client_id) if known_client_id else None
        if existing is not None and existing.incarnation != session.incarnation:
            existing = None
        resumed = existing is not None and existing.active and self.queues.exists(existing.live_queue_url) \
            and self.queues.exists(existing.history_queue_url)
        if resumed:
            assert existing is not None
            client = existing
            if self.store.touch_client(session_id, client.client_id):
                self.store.bump_roster(session_id)
        else:
            # A browser still counted (active, its queues lost) keeps its place; anyone else takes one.
            counted = existing is not None and existing.active
            if not counted:
                self._take_place(session, browser_id)
            client_id = known_client_id or new_client_id()
            try:
                pair = self.queues.create(session_id, client_id)
                client = ClientRecord(
                    session_id=session_id, client_id=client_id, status="active",
                    joined_at=existing.joined_at if existing and existing.active else now,
                    last_heartbeat=now, live_queue_url=pair.live_url, history_queue_url=pair.history_url,
                    expires_at=session.expires_at, browser_id=browser_id, incarnation=session.incarnation,
                    in_chat=in_chat or bool(existing and existing.in_chat),
                )
                self.store.put_client(client)
            except Exception:
                if not counted:
                    self._give_place(session, browser_id)
                raise
            self.store.bump_roster(session_id)
        # From here on every publish sends to this browser's live queue (idempotent for a resume).
        self.store.add_to_fanout(session_id, client.client_id, client.live_queue_url,
                                 incarnation=session.incarnation, expires_at=session.expires_at)

        master = self._ensure_master(session, client)
        last_seq = self._send_history(session_id, client)
        return JoinOutcome(client, Role.of(client.client_id, master), master, resumed, last_seq)

    def _take_place(self, session: SessionRecord, browser_id: str | None) -> None:
        settings = self.settings
        # The counters live as long as the session (its TTL), read once by the join.
        if not self.store.reserve_slot(session.session_id, viewers_counter(session), settings.max_viewers,
                                       expires_at=session.expires_at):
            raise SessionFull(f"This session is full ({settings.max_viewers} viewers); try again later.",
                              details={"limit": settings.max_viewers})
        if browser_id is not None and not self.store.reserve_slot(
                session.session_id, tabs_counter(session, browser_id), settings.max_tabs_per_browser,
                expires_at=session.expires_at):
            self.store.release_slot(session.session_id, viewers_counter(session))
            raise SessionFull(
                f"This browser already watches this session in {settings.max_tabs_per_browser} tabs; "
                "close one and reload.", details={"limit": settings.max_tabs_per_browser})

    def _give_place(self, session: SessionRecord, browser_id: str | None) -> None:
        self.store.release_slot(session.session_id, viewers_counter(session))
        if browser_id is not None:
            self.store.release_slot(session.session_id, tabs_counter(session, browser_id))

    def _master_is_silent(self, session: SessionRecord, now: float) -> bool:
        return session.master_client_id is not None and \
            now - session.master_heartbeat > self.settings.heartbeat_timeout_s

    def _ensure_master(self, session: SessionRecord, joiner: ClientRecord) -> str | None:
        """The first browser becomes master; a joiner that finds the master silent fails over at once.

        A view in a chat is never the first master: the role waits for the next browser.
        """
        session_id = session.session_id
        current = session.master_client_id
        candidate = joiner.client_id
        if current is None:
            if joiner.in_chat:
                return None
            if self.store.set_master(session_id, candidate, None):
                self._announce_master(session_id, candidate, None, "first_join")
                return candidate
            return self.store.require_session(session_id).master_client_id
        if current == candidate:
            # The master joining again (after a restart, or with its queues lost) shows it alive: its
            # join counts as its heartbeat, so the next observer beat does not find it silent.
            self.store.touch_master(session_id, candidate, self._clock())
            return current
        if self._master_is_silent(session, self._clock()):
            return self._fail_over(session, current)
        return current

    def _fail_over(self, session: SessionRecord, silent: str | None,
                   clients: Sequence[ClientRecord] | None = None, *, master_gone: bool = False) -> str | None:
        """Hand the master role to the longest-connected live observer (one Query; failovers are rare).

        Views in a chat are passed over: only the AI's explicit transfer makes one master.
        """
        session_id = session.session_id
        now = self._clock()
        clients = self._clients(session) if clients is None else clients
        successors = [c for c in clients if c.client_id != silent and not c.away and not c.in_chat
                      and now - c.last_heartbeat <= self.settings.heartbeat_timeout_s]
        # A silent master only while it is still silent: a beat of its that lands between the read that
        # found it silent and this write keeps it master (the write's condition sees that beat). A master
        # that left the session is replaced whatever its last beat.
        silent_before = None if master_gone else now - self.settings.heartbeat_timeout_s
        if successors and self._change_master(session_id, successors[0].client_id, silent, "failover",
                                              silent_before=silent_before):
            return successors[0].client_id
        return self.store.require_session(session_id).master_client_id

    def _announce_master(self, session_id: str, new: str, old: str | None, reason: str) -> None:
        self.publish(session_id, MessageType.ROLE_CHANGE, payload={
            "master_client_id": new, "previous_master_client_id": old, "reason": reason,
        })

    def _send_history(self, session_id: str, client: ClientRecord) -> int:
        """Copy snapshot + tail + END_OF_HISTORY to the browser's history queue."""
        session = self.store.require_session(session_id)
        if session.incarnation != client.incarnation:
            raise Gone("The session was created anew while joining; join again.")
        snapshot_seq, snapshot_key = self._fresh_snapshot(session)
        tail = self.store.events_after(session_id, snapshot_seq, incarnation=session.incarnation)
        last_seq = tail[-1].seq if tail else snapshot_seq
        now = self._clock()
        incarnation = session.incarnation or None
        messages: list[Envelope] = []
        if snapshot_key is not None:
            messages.append(Envelope(session_id, snapshot_seq, MessageType.SNAPSHOT, now, s3_key=snapshot_key,
                                     url=self.blobs.presign(snapshot_key), incarnation=incarnation))
        messages.extend(self.envelope(session_id, event) for event in tail)
        messages.append(end_of_history(session_id, last_seq, now, incarnation))
        try:
            self.queues.send_all(client.history_queue_url, messages, dedup_prefix=secrets.token_hex(6))
        except QueueMissing as exc:
            raise Gone("This browser's queue disappeared while joining; join again.") from exc
        return last_seq

    # -- snapshots -----------------------------------------------------------------------------

    def _fresh_snapshot(self, session: SessionRecord) -> tuple[int, str | None]:
        """The latest snapshot, first folding a long tail into a new one so joins stay O(tail)."""
        if session.seq - session.snapshot_seq < self.settings.snapshot_every:
            return session.snapshot_seq, session.snapshot_key
        return self.take_snapshot(session)

    def page_state(self, session: SessionRecord) -> page_state.PageState:
        """What every page of the session shows now: the latest snapshot with the later events folded in.

        The page's own reducer (``web_py.page_state.apply``), so this is exactly what browsers show.
        """
        state = page_state.PageState()
        if session.snapshot_key is not None:
            state = page_state.PageState.from_dict(self.blobs.get_json(session.snapshot_key))
        for event in self.store.events_after(session.session_id, session.snapshot_seq,
                                             incarnation=session.incarnation):
            envelope = self.envelope(session.session_id, event, with_url=False)
            document = self.blobs.get_json(event.s3_key) if envelope.type in BY_REFERENCE and event.s3_key else None
            state = page_state.apply(state, envelope, document)
        return state

    def take_snapshot(self, session: SessionRecord) -> tuple[int, str | None]:
        state = self.page_state(session)
        if state.last_seq <= session.snapshot_seq:
            return session.snapshot_seq, session.snapshot_key
        key = generate_key("snapshot", session.session_id, name=_scoped(session.incarnation, f"{state.last_seq:010d}"))
        self.blobs.put_json(key, state.to_dict())
        if self.store.set_snapshot(session.session_id, state.last_seq, key):
            return state.last_seq, key
        latest = self.store.require_session(session.session_id, active=False)
        return latest.snapshot_seq, latest.snapshot_key

    # -- publishing ----------------------------------------------------------------------------

    def envelope(self, session_id: str, event: StoredEvent, *, with_url: bool = True) -> Envelope:
        url = self.blobs.presign(event.s3_key) if with_url and event.s3_key else None
        return Envelope(session_id, event.seq, MessageType(event.type), event.ts, s3_key=event.s3_key,
                        url=url, payload=event.payload, incarnation=event.incarnation or None)

    def publish(self, session_id: str, kind: MessageType, *, s3_key: str | None = None,
                payload: dict[str, Any] | None = None, document: dict[str, Any] | None = None,
                allow_ended: bool = False) -> Delivery:
        """Store the event, then send it to every live queue of the session.

        ``document``: the JSON already stored behind ``s3_key``; when small it rides in the live
        message too (no URL then: the page need not fetch it). The log keeps only the key, so
        history, snapshots and repairs stay by reference.
        A failing or deleted queue never stops the others: its browser is marked gone and reported.
        """
        appended = self.store.append(session_id, kind.value, s3_key, payload, self.settings.session_ttl_s,
                                     allow_ended=allow_ended)
        event = appended.event
        envelope = self._live_envelope(session_id, event, document)
        targets = sorted(self._fanout_at(session_id, event.incarnation, appended.fanout_version).items())
        results = list(self._pool.map(lambda t: self._deliver(t[1], envelope), targets)) \
            if len(targets) > 1 else [self._deliver(url, envelope) for _, url in targets]
        outcome = dict(zip((cid for cid, _ in targets), results, strict=True))
        failed = tuple(cid for cid, sent in outcome.items() if sent is not Sent.OK)
        gone = [cid for cid, sent in outcome.items() if sent is Sent.QUEUE_GONE]
        for client_id in gone:
            self._remove_client(session_id, client_id, delete_queues=False)
        if event.seq % self.settings.snapshot_every == 0:
            self._snapshot_quietly(session_id)
        return Delivery(event.seq, len(targets) - len(failed), len(failed), failed)

    def _live_envelope(self, session_id: str, event: StoredEvent, document: dict[str, Any] | None) -> Envelope:
        if document is not None and event.s3_key is not None and \
                inline_size(document) <= self.settings.inline_document_bytes:
            return self.envelope(session_id, event, with_url=False).with_document(document)
        return self.envelope(session_id, event)

    def _deliver(self, live_queue_url: str, envelope: Envelope) -> Sent:
        """Send one event to one live queue.

        Only a missing queue removes the browser. Any other failure is retried, then reported: the
        event is safe in the log and the browser repairs the gap when its next message arrives.
        """
        for attempt in range(3):
            try:
                self.queues.send(live_queue_url, envelope, dedup_id=str(envelope.seq))
                return Sent.OK
            except QueueMissing:
                return Sent.QUEUE_GONE
            except UpstreamError:
                if attempt == 2:
                    log.exception("fan-out of seq %s to %s failed", envelope.seq, live_queue_url)
                    return Sent.FAILED
                time.sleep(0.01 * (attempt + 1))
        return Sent.FAILED

    def _snapshot_quietly(self, session_id: str) -> None:
        # A snapshot is an optimisation for joins: failing to take one must not fail the publish.
        try:
            session = self.store.get_session(session_id)
            if session is not None:
                self.take_snapshot(session)
        except Exception:
            log.exception("snapshot of %s failed", session_id)

    def _fanout_at(self, session_id: str, incarnation: str, version: int) -> dict[str, str]:
        """The incarnation's fan-out set at ``version`` or later: from the cache, or one Query when it is older.

        ``version`` came back from the write that stored the event, so every browser whose entry
        was counted by then is in the set returned; one added later reads the event in its history.
        """
        key = (session_id, incarnation)
        with self._fanout_lock:
            cached = self._fanout.get(key)
        if cached is not None and cached[0] >= version:
            return cached[1]
        read_version, entries = self.store.fanout(session_id, incarnation=incarnation)
        self.fanout_reads += 1
        with self._fanout_lock:
            cached = self._fanout.get(key)
            if cached is None or cached[0] < read_version:
                self._fanout.pop(key, None)
                self._fanout[key] = (read_version, entries)
                if len(self._fanout) > FANOUT_CACHE:
                    self._fanout.pop(next(iter(self._fanout)))
        return entries

    # -- the participant list ------------------------------------------------------------------

    def announce_participants(self, session_id: str, session: SessionRecord | None = None) -> bool:
        """Publish the list of live browsers if it changed and the last announcement is old enough.

        Coalesced: however many joins and removals happened since, one PARTICIPANTS event carries
        the list as it is now. Safe under racing announcers: the claim lets one through per
        interval, and the version is recorded by the event's seq, so the latest list in the log is
        the one the next check compares with.
        """
        session = session or self.store.get_session(session_id)
        if session is None or not session.active or session.roster_version == session.roster_announced:
            return False
        now = self._clock()
        if now - session.roster_announced_at < self._announce_interval(session):
            return False
        if not self.store.claim_roster(session_id, session.roster_announced_at, now):
            return False
        clients = self._clients(session)
        live = self._listed(session, clients, now)
        delivery = self.publish(session_id, MessageType.PARTICIPANTS, payload={
            "master_client_id": session.master_client_id,
            "participants": [{"client_id": p.client_id, "role": p.role, "joined_at": p.joined_at,
                              **({"in_chat": True} if p.in_chat else {})} for p in live],
        })
        self.store.mark_roster_announced(session_id, session.roster_version, delivery.seq)
        # The list left out the silent browsers no sweep had marked away yet: mark them now, so the
        # next beat of one (which finds it away) lists it again. One that beat since this list was
        # read is not marked: the next list must have it.
        listed = {p.client_id for p in live}
        silent_since = now - self.settings.heartbeat_timeout_s
        marked = [self.store.mark_client_away(session_id, c.client_id, silent_since)
                  for c in clients if not c.away and c.client_id not in listed]
        if not all(marked):
            self.store.bump_roster(session_id)
        return True

    def _announce_interval(self, session: SessionRecord) -> float:
        """The shortest time between two lists: longer for a larger session, so that announcing
        costs at most ``participant_sends_per_s`` sends a second whatever the session's size (the
        size as this process last read the fan-out set; unknown, the base interval)."""
        with self._fanout_lock:
            cached = self._fanout.get((session.session_id, session.incarnation))
        browsers = len(cached[1]) if cached is not None else 0
        return max(self.settings.participants_every_s, browsers / self.settings.participant_sends_per_s)

    def live_participants(self, session: SessionRecord) -> list[Participant]:
        """Browsers heartbeating within the timeout (the longest-connected first); silent ones are away."""
        return self._listed(session, self._clients(session), self._clock())

    def _listed(self, session: SessionRecord, clients: Sequence[ClientRecord], now: float) -> list[Participant]:
        master = session.master_client_id
        return [
            Participant(c.client_id, Role.of(c.client_id, master), c.joined_at, round(now - c.last_heartbeat, 3),
                        c.in_chat)
            for c in clients
            if not c.away and now - c.last_heartbeat <= self.settings.heartbeat_timeout_s
        ]

    # -- browsers' queues ----------------------------------------------------------------------

    def _active_client(self, session_id: str, client_id: str) -> ClientRecord:
        client = self.store.get_client(session_id, client_id)
        if client is None:
            raise NotFound("Unknown browser for this session; join it first.")
        if not client.active:
            raise Gone("This browser was removed from the session; join again.")
        return client

    def _known_queue(self, session_id: str, client_id: str, queue: str) -> str:
        """The queue URL for a poll or an ack, without a DynamoDB read on the hot path.

        A browser's queue URLs never change (its queue names are fixed by its ids), and a removed
        browser's queues are deleted, so the queue itself answers "gone": no status read needed.
        """
        key = (session_id, client_id)
        with self._queue_urls_lock:
            urls = self._queue_urls.get(key)
        if urls is None:
            client = self._active_client(session_id, client_id)
            urls = (client.live_queue_url, client.history_queue_url)
            with self._queue_urls_lock:
                self._queue_urls[key] = urls
                if len(self._queue_urls) > QUEUE_URL_CACHE:
                    self._queue_urls.pop(next(iter(self._queue_urls)))
        return urls[0] if queue == "live" else urls[1]

    def receive_urls(self, session_id: str, client_id: str) -> ReceiveUrls | None:
        """Fresh presigned receives for this browser's own two queues (None: poll through us)."""
        if self.receive_signer is None:
            return None
        live = self._known_queue(session_id, client_id, "live")
        history = self._known_queue(session_id, client_id, "history")
        return self.receive_signer.sign(live, history)

    def receive_urls_of(self, client: ClientRecord) -> ReceiveUrls | None:
        """The same, for a browser just joined (its record in hand: no read)."""
        if self.receive_signer is None:
            return None
        return self.receive_signer.sign(client.live_queue_url, client.history_queue_url)

    def _forget_queues(self, session_id: str, client_id: str) -> None:
        with self._queue_urls_lock:
            self._queue_urls.pop((session_id, client_id), None)

    def poll(self, session_id: str, client_id: str, queue: str, wait_s: int, max_messages: int
             ) -> list[tuple[str, str]]:
        url = self._known_queue(session_id, client_id, queue)
        # Live messages are acknowledged with the next heartbeat: hidden until well after it (the
        # presigned live receive asks the same); history keeps the queue's short default.
        visibility = self.settings.live_visibility_s if queue == "live" else None
        try:
            return self.queues.receive(url, wait_s, max_messages, visibility_timeout_s=visibility)
        except Gone:
            self._forget_queues(session_id, client_id)
            raise

    def delete(self, session_id: str, client_id: str, queue: str, receipts: Sequence[str]) -> int:
        """Delete by receipt handle, ten per SQS request (DeleteMessageBatch's limit)."""
        url = self._known_queue(session_id, client_id, queue)
        try:
            return sum(self.queues.delete(url, receipts[start:start + DELETE_BATCH])
                       for start in range(0, len(receipts), DELETE_BATCH))
        except Gone:
            self._forget_queues(session_id, client_id)
            raise

    def events_after(self, session_id: str, after_seq: int, limit: int) -> tuple[list[Envelope], int]:
        session = self.store.require_session(session_id, active=False)
        events = self.store.events_after(session_id, after_seq, limit, incarnation=session.incarnation)
        return [self.envelope(session_id, e) for e in events], session.seq

    # -- roles and liveness --------------------------------------------------------------------

    def now(self) -> float:
        """The service's clock (injected; wall time in production)."""
        return self._clock()

    def heartbeat(self, session_id: str, client_id: str) -> tuple[Role, SessionRecord]:
        """O(1): record the beat; fail over only when METADATA shows the master silent."""
        client = self._active_client(session_id, client_id)
        session = self.store.require_session(session_id)
        if client.incarnation != session.incarnation:
            raise Gone("The session was created anew since this browser joined; join again.")
        if self.store.touch_client(session_id, client_id):
            self.store.bump_roster(session_id)  # back from away: listed again
        now = self._clock()
        if session.master_client_id == client_id:
            self.store.touch_master(session_id, client_id, now)
        elif (session.master_client_id is None or self._master_is_silent(session, now)) \
                and now - session.last_sweep >= self.settings.heartbeat_interval_s / 2 \
                and self.store.claim_sweep(session_id, session.last_sweep, now):
            # One heartbeat per half interval does the failover's single Query, not every browser's.
            self._fail_over(session, session.master_client_id)
            session = self.store.require_session(session_id)
        if self.announce_participants(session_id, session):
            session = self.store.require_session(session_id)
        return Role.of(client_id, session.master_client_id), session

    def sweep(self, session_id: str) -> int:
        """Fail over from a silent master, mark silent browsers away, remove stale ones; returns removals.

        Never called from a browser's request: the scheduled sweep (AWS) and the local stack's
        sweeper thread run it. Removals go in small batches without an announcement each; one
        coalesced PARTICIPANTS event follows.
        """
        session = self.store.get_session(session_id)
        if session is None or not session.active:
            return 0
        now = self._clock()
        settings = self.settings
        clients = self._clients(session)
        master = session.master_client_id
        master_gone = master is not None and all(c.client_id != master for c in clients)
        if (master is None and clients) or master_gone or self._master_is_silent(session, now):
            self._fail_over(session, master, clients, master_gone=master_gone)
        stale = [c for c in clients if now - c.last_heartbeat > settings.stale_after_s]
        silent = [c for c in clients if not c.away and settings.heartbeat_timeout_s < now - c.last_heartbeat
                  <= settings.stale_after_s]
        went_away = [c for c in silent
                     if self.store.mark_client_away(session_id, c.client_id, now - settings.heartbeat_timeout_s)]
        if went_away:
            self.store.bump_roster(session_id)  # once for all of them: the list is announced coalesced
        for n, client in enumerate(stale):
            if n and n % REMOVAL_BATCH == 0:
                time.sleep(REMOVAL_PAUSE_S)
            self._remove_client(session_id, client.client_id, delete_queues=True, record=client, session=session)
        # A crash between taking a place and registering would leak it: count again. The count is
        # read before the list, and corrected only when no join took a place lately (one in flight
        # holds its place before its browser is listed).
        counter = viewers_counter(session)
        counted = self.store.slots(session_id, counter)
        if counted > len(clients) - len(stale):
            registered = len(self._clients(session))
            if counted > registered:
                self.store.set_slots(session_id, counter, registered, expected=counted,
                                     quiet_since=now - PLACE_IN_FLIGHT_S)
        self.announce_participants(session_id)
        return len(stale)

    def sweep_if_due(self, session_id: str) -> int:
        """The sweep of one session on a schedule: the list when due; liveness every half timeout.

        Liveness reads every browser of the session (a Query): once per half timeout is as often
        as anything can change, and the claim lets one sweeper through when several run.
        """
        session = self.store.get_session(session_id)
        if session is None or not session.active:
            return 0
        now = self._clock()
        if now - session.last_sweep >= self.settings.heartbeat_timeout_s / 2 and \
                self.store.claim_sweep(session_id, session.last_sweep, now):
            return self.sweep(session_id)
        self.announce_participants(session_id, session)
        return 0

    def sweep_all(self) -> tuple[int, int]:
        """The scheduled sweep: liveness in every live session; queues of expired ones deleted."""
        live, expired = self.store.active_session_ids()
        for session_id in live:
            try:
                self.sweep_if_due(session_id)
            except Exception:
                log.exception("sweep of %s failed", session_id)
        for session_id in expired:
            try:
                self.expire(session_id)
            except Exception:
                log.exception("expiring %s failed", session_id)
        return len(live), len(expired)

    def expire(self, session_id: str) -> int:
        """A session past its TTL that nobody ended: delete its queues and mark it ended.

        Its items go with DynamoDB's TTL and its documents with the bucket's lifecycle rule; only
        the queues would otherwise outlive it. One created anew since the sweep listed it is alive:
        left alone (its browsers' queues and its status are the new incarnation's).
        """
        if self.store.get_session(session_id) is not None:
            return 0
        removed = self._delete_all_queues(session_id)
        self.store.mark_ended(session_id)
        return removed

    def _delete_all_queues(self, session_id: str) -> int:
        removed = 0
        for client in self.store.list_clients(session_id, active_only=False):
            self._forget_queues(session_id, client.client_id)
            self.queues.delete_queue(client.live_queue_url)
            self.queues.delete_queue(client.history_queue_url)
            if self.store.mark_client_gone(session_id, client.client_id):
                removed += 1
        return removed

    def transfer_control(self, session_id: str, client_id: str) -> str | None:
        session = self.store.require_session(session_id)
        target = self.store.get_client(session_id, client_id)
        if target is None or not target.active or target.incarnation != session.incarnation:
            raise NotFound(f"No live browser {client_id!r} in session {session_id!r}.")
        if session.master_client_id == client_id:
            raise InvalidInput(f"{client_id!r} is already the master.")
        if not self._change_master(session_id, client_id, session.master_client_id, "transfer"):
            raise InvalidInput("The master changed while transferring; look at the participants and retry.")
        return session.master_client_id

    def _change_master(self, session_id: str, new: str, old: str | None, reason: str, *,
                       silent_before: float | None = None) -> bool:
        if not self.store.set_master(session_id, new, old, silent_before=silent_before):
            return False
        self._announce_master(session_id, new, old, reason)
        return True

    def claim_price_refresh(self, session_id: str, client_id: str) -> None:
        """The master's refresh, at most one per cooldown per session (whichever instance serves it)."""
        self.require_master(session_id, client_id)
        now, cooldown = self._clock(), self.settings.refresh_cooldown_s
        if not self.store.claim_refresh(session_id, now - cooldown, now):
            raise TooManyRequests(f"The price was refreshed less than {cooldown:g} s ago; try again shortly.",
                                  retry_after_s=cooldown)

    def require_master(self, session_id: str, client_id: str) -> None:
        self._active_client(session_id, client_id)
        session = self.store.require_session(session_id)
        if session.master_client_id != client_id:
            raise Forbidden("Only the master browser may do this; this browser is an observer.")

    def _remove_client(self, session_id: str, client_id: str, *, delete_queues: bool,
                       record: ClientRecord | None = None, session: SessionRecord | None = None) -> None:
        """Active → gone once: out of the fan-out, its places given back, the list marked changed."""
        client = record or self.store.get_client(session_id, client_id)
        if client is None or not self.store.mark_client_gone(session_id, client_id):
            return
        self.store.remove_from_fanout(session_id, client_id, incarnation=client.incarnation)
        self._forget_queues(session_id, client_id)
        session = session or self.store.get_session(session_id)
        # Places and the list belong to the browser's own incarnation (the id may have been created anew).
        if session is not None and session.incarnation == client.incarnation:
            self._give_place(session, client.browser_id)
            self.store.bump_roster(session_id)
        if delete_queues:
            self.queues.delete_queue(client.live_queue_url)
            self.queues.delete_queue(client.history_queue_url)

    # -- ending --------------------------------------------------------------------------------

    def end_session(self, session_id: str, reason: str) -> tuple[int, str, int]:
        """Notify browsers, archive the log to S3, delete every queue of the session."""
        session = self.store.require_session(session_id)
        archive_key = generate_key("archive", session_id, name=_scoped(session.incarnation, "events"))
        delivery = self.publish(session_id, MessageType.SESSION_ENDED,
                                payload={"reason": reason, "archive_key": archive_key})
        self.store.mark_ended(session_id)
        events = self.store.events_after(session_id, 0, incarnation=session.incarnation)
        self.blobs.put_json(archive_key, {
            "session_id": session_id, "ended_at": self._clock(),
            "events": [self.envelope(session_id, e, with_url=False).to_dict() for e in events],
        })
        return delivery.seq, archive_key, self._delete_all_queues(session_id)


def _scoped(incarnation: str, name: str) -> str:
    """A document name unique to one incarnation of the session id (as keys are cached by name)."""
    return f"{incarnation}-{name}" if incarnation else name
