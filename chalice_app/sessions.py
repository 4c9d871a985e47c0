"""The session service: onboarding, fan-out, roles and liveness, cleanup.

All session behaviour lives here, over three small ports (events, queues, blobs: ``ports.py``).
Operations receive it by injection; it never sees HTTP, MCP or boto3. Time comes from the injected
``clock``, so liveness (failover, stale browsers, expiry) is testable without waiting.
"""

from __future__ import annotations

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
from chalice_app.errors import Forbidden, Gone, InvalidInput, NotFound, TooManyRequests, UpstreamError
from chalice_app.ports import (
    BlobStore,
    BrowserQueues,
    ClientRecord,
    EventStore,
    QueueMissing,
    SessionRecord,
    StoredEvent,
)
from chalice_app.roles import Role
from chalice_app.settings import Settings
from web_py import page_state
from web_py.messages import BY_REFERENCE, CLIENT_ID_LENGTH, Envelope, MessageType, end_of_history

log = logging.getLogger(__name__)
_ID_ALPHABET = string.ascii_lowercase + string.digits
QUEUE_URL_CACHE = 4096


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


class SessionService:
    def __init__(self, settings: Settings, store: EventStore, queues: BrowserQueues, blobs: BlobStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.queues = queues
        self.blobs = blobs
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fanout")
        self._queue_urls: dict[tuple[str, str], tuple[str, str]] = {}
        self._queue_urls_lock = threading.Lock()

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
                        round(now - c.last_heartbeat, 3))
            for c in clients
        ]

    # -- joining -------------------------------------------------------------------------------

    def join(self, session_id: str, known_client_id: str | None = None, *,
             identify: Callable[[str], str] | None = None) -> JoinOutcome:
        """Register a browser; its live queue enters the fan-out before history is read.

        ``identify`` gives the browser's client id in the session's current incarnation.
        """
        session = self.store.require_session(session_id)
        if identify is not None:
            known_client_id = identify(session.incarnation)
        now = self._clock()
        existing = self.store.get_client(session_id, known_client_id) if known_client_id else None
        if existing is not None and existing.incarnation != session.incarnation:
            existing = None
        resumed = existing is not None and existing.active and self.queues.exists(existing.live_queue_url) \
            and self.queues.exists(existing.history_queue_url)
        if resumed:
            assert existing is not None
            client = existing
            self.store.touch_client(session_id, client.client_id)
        else:
            client_id = known_client_id or new_client_id()
            pair = self.queues.create(session_id, client_id)
            client = ClientRecord(
                session_id=session_id, client_id=client_id, status="active",
                joined_at=existing.joined_at if existing and existing.active else now,
                last_heartbeat=now, live_queue_url=pair.live_url, history_queue_url=pair.history_url,
                expires_at=session.expires_at, incarnation=session.incarnation,
            )
            self.store.put_client(client)
        # From here on every publish sends to this browser's live queue (idempotent for a resume).
        self.store.add_to_fanout(session_id, client.client_id, client.live_queue_url)

        master = self._ensure_master(session_id, client.client_id)
        if not resumed:
            self._publish_participants(session_id)
        last_seq = self._send_history(session_id, client)
        return JoinOutcome(client, Role.of(client.client_id, master), master, resumed, last_seq)

    def _ensure_master(self, session_id: str, candidate: str) -> str | None:
        """The first live browser becomes master; a dead master is replaced by the sweep."""
        session = self.store.require_session(session_id)
        current = session.master_client_id
        if current is not None:
            record = self.store.get_client(session_id, current)
            if record is not None and record.active:
                return current
        if self.store.set_master(session_id, candidate, current):
            self.publish(session_id, MessageType.ROLE_CHANGE, payload={
                "master_client_id": candidate, "previous_master_client_id": current,
                "reason": "first_join" if current is None else "failover",
            })
            return candidate
        return self.store.require_session(session_id).master_client_id

    def _send_history(self, session_id: str, client: ClientRecord) -> int:
        """Copy snapshot + tail + END_OF_HISTORY to the browser's history queue."""
        session = self.store.require_session(session_id)
        snapshot_seq, snapshot_key = self._fresh_snapshot(session)
        tail = self.store.events_after(session_id, snapshot_seq)
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

    def take_snapshot(self, session: SessionRecord) -> tuple[int, str | None]:
        state = page_state.PageState()
        if session.snapshot_key is not None:
            state = page_state.PageState.from_dict(self.blobs.get_json(session.snapshot_key))
        for event in self.store.events_after(session.session_id, session.snapshot_seq):
            envelope = self.envelope(session.session_id, event, with_url=False)
            document = self.blobs.get_json(event.s3_key) if envelope.type in BY_REFERENCE and event.s3_key else None
            state = page_state.apply(state, envelope, document)
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
                payload: dict[str, Any] | None = None, allow_ended: bool = False) -> Delivery:
        """Store the event, then send it to every live queue of the session.

        A failing or deleted queue never stops the others: its browser is marked gone and reported.
        """
        appended = self.store.append(session_id, kind.value, s3_key, payload, self.settings.session_ttl_s,
                                     allow_ended=allow_ended)
        event = appended.event
        envelope = self.envelope(session_id, event)
        targets = sorted(appended.fanout.items())
        results = list(self._pool.map(lambda t: self._deliver(t[1], envelope), targets)) \
            if len(targets) > 1 else [self._deliver(url, envelope) for _, url in targets]
        outcome = dict(zip((cid for cid, _ in targets), results, strict=True))
        failed = tuple(cid for cid, sent in outcome.items() if sent is not Sent.OK)
        gone = [cid for cid, sent in outcome.items() if sent is Sent.QUEUE_GONE]
        for client_id in gone:
            self._remove_client(session_id, client_id, delete_queues=False, announce=False)
        if gone and kind is not MessageType.SESSION_ENDED:
            self._publish_participants(session_id)
        if event.seq % self.settings.snapshot_every == 0:
            self._snapshot_quietly(session_id)
        return Delivery(event.seq, len(targets) - len(failed), len(failed), failed)

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

    def _publish_participants(self, session_id: str) -> Delivery:
        session, people = self.participants(session_id)
        return self.publish(session_id, MessageType.PARTICIPANTS, payload={
            "master_client_id": session.master_client_id,
            "participants": [
                {"client_id": p.client_id, "role": p.role, "joined_at": p.joined_at} for p in people
            ],
        })

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

    def _forget_queues(self, session_id: str, client_id: str) -> None:
        with self._queue_urls_lock:
            self._queue_urls.pop((session_id, client_id), None)

    def poll(self, session_id: str, client_id: str, queue: str, wait_s: int, max_messages: int
             ) -> list[tuple[str, str]]:
        url = self._known_queue(session_id, client_id, queue)
        try:
            return self.queues.receive(url, wait_s, max_messages)
        except Gone:
            self._forget_queues(session_id, client_id)
            raise

    def delete(self, session_id: str, client_id: str, queue: str, receipts: Sequence[str]) -> int:
        url = self._known_queue(session_id, client_id, queue)
        try:
            return self.queues.delete(url, receipts)
        except Gone:
            self._forget_queues(session_id, client_id)
            raise

    def events_after(self, session_id: str, after_seq: int, limit: int) -> tuple[list[Envelope], int]:
        session = self.store.require_session(session_id, active=False)
        events = self.store.events_after(session_id, after_seq, limit)
        return [self.envelope(session_id, e) for e in events], session.seq

    # -- roles and liveness --------------------------------------------------------------------

    def now(self) -> float:
        """The service's clock (injected; wall time in production)."""
        return self._clock()

    def heartbeat(self, session_id: str, client_id: str) -> tuple[Role, SessionRecord]:
        self._active_client(session_id, client_id)
        self.store.touch_client(session_id, client_id)
        session = self.store.require_session(session_id)
        now = self._clock()
        # Liveness is checked by one heartbeat per half interval, not by every browser's.
        if now - session.last_sweep >= self.settings.heartbeat_interval_s / 2 and \
                self.store.claim_sweep(session_id, session.last_sweep, now):
            self.sweep(session_id)
            session = self.store.require_session(session_id)
        return Role.of(client_id, session.master_client_id), session

    def sweep(self, session_id: str) -> None:
        """Promote an observer when the master is silent; remove browsers silent for much longer."""
        session = self.store.get_session(session_id)
        if session is None or not session.active:
            return
        now = self._clock()
        timeout = self.settings.heartbeat_timeout_s
        clients = self._clients(session)
        alive = [c for c in clients if now - c.last_heartbeat <= timeout]
        master = next((c for c in clients if c.client_id == session.master_client_id), None)
        if master is None or now - master.last_heartbeat > timeout:
            successors = [c for c in alive if c.client_id != session.master_client_id]
            if successors:
                self._change_master(session_id, successors[0].client_id, session.master_client_id, "failover")
        for client in clients:
            if now - client.last_heartbeat > self.settings.stale_after_s:
                self._remove_client(session_id, client.client_id, delete_queues=True, announce=True)

    def sweep_all(self) -> tuple[int, int]:
        """The scheduled sweep: liveness in every live session; queues of expired ones deleted."""
        live, expired = self.store.active_session_ids()
        for session_id in live:
            try:
                self.sweep(session_id)
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
        the queues would otherwise outlive it.
        """
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
        if target is None or not target.active:
            raise NotFound(f"No live browser {client_id!r} in session {session_id!r}.")
        if session.master_client_id == client_id:
            raise InvalidInput(f"{client_id!r} is already the master.")
        if not self._change_master(session_id, client_id, session.master_client_id, "transfer"):
            raise InvalidInput("The master changed while transferring; look at the participants and retry.")
        return session.master_client_id

    def _change_master(self, session_id: str, new: str, old: str | None, reason: str) -> bool:
        if not self.store.set_master(session_id, new, old):
            return False
        self.publish(session_id, MessageType.ROLE_CHANGE, payload={
            "master_client_id": new, "previous_master_client_id": old, "reason": reason,
        })
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

    def _remove_client(self, session_id: str, client_id: str, *, delete_queues: bool, announce: bool) -> None:
        client = self.store.get_client(session_id, client_id)
        if client is None or not self.store.mark_client_gone(session_id, client_id):
            return
        self.store.remove_from_fanout(session_id, client_id)
        self._forget_queues(session_id, client_id)
        if delete_queues:
            self.queues.delete_queue(client.live_queue_url)
            self.queues.delete_queue(client.history_queue_url)
        if announce:
            self._publish_participants(session_id)

    # -- ending --------------------------------------------------------------------------------

    def end_session(self, session_id: str, reason: str) -> tuple[int, str, int]:
        """Notify browsers, archive the log to S3, delete every queue of the session."""
        session = self.store.require_session(session_id)
        archive_key = generate_key("archive", session_id, name=_scoped(session.incarnation, "events"))
        delivery = self.publish(session_id, MessageType.SESSION_ENDED,
                                payload={"reason": reason, "archive_key": archive_key})
        self.store.mark_ended(session_id)
        events = self.store.events_after(session_id, 0)
        self.blobs.put_json(archive_key, {
            "session_id": session_id, "ended_at": self._clock(),
            "events": [self.envelope(session_id, e, with_url=False).to_dict() for e in events],
        })
        return delivery.seq, archive_key, self._delete_all_queues(session_id)


def _scoped(incarnation: str, name: str) -> str:
    """A document name unique to one incarnation of the session id (as keys are cached by name)."""
    return f"{incarnation}-{name}" if incarnation else name
