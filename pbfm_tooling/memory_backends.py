"""In-memory event store, browser queues and blob store: the ports of ``chalice_app.ports`` without AWS.

For fast tests of the session service on a controllable clock. They keep the semantics the service
relies on, as DynamoDB, SQS and S3 (and moto) show them; ``tests/contract`` runs the same tests
against these and against the boto3 implementations on a real moto server, so they cannot drift:

- event store: items stay after their TTL (AWS deletes lazily, moto never) and reads filter them;
  a sequence number is taken by a put-if-absent of the event within the session's incarnation, so
  a re-created session id (a new incarnation) starts its log at 1 beside its predecessor's leftovers;
- queues: FIFO message groups as the SQS queues use them (a live message in a group of its own,
  a history in one group: a group with a message in flight hands out nothing after it), visibility
  timeouts (the queue's, or the receive's) and redelivery on the injected clock, a fresh receipt handle per
  receive (as on moto, an earlier one still deletes), deduplication by id, long polls that return when a message
  arrives, deleted queues answer as missing;
- blobs: JSON documents by key (a missing key is an ``UpstreamError``, like S3's NoSuchKey through
  ``aws_errors``), and presigned URLs of a deterministic, S3-like form.

Not in the Lambda zip: the runtime never needs them.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from chalice_app.blobs import PRESIGN_SECONDS, encode_document
from chalice_app.errors import Conflict, Gone, UpstreamError
from chalice_app.event_store import APPEND_ATTEMPTS, new_incarnation
from chalice_app.ports import (
    Appended,
    ClientRecord,
    QueueMissing,
    QueuePair,
    SessionRecord,
    StoredEvent,
    required_session,
)
from chalice_app.queues import HISTORY_GROUP_ID, live_group_id, queue_names
from chalice_app.sessions import SessionService
from chalice_app.settings import Settings
from web_py.messages import Envelope

Clock = Callable[[], float]
MEMORY_ACCOUNT = "000000000000"
# SQS FIFO: a deduplication id is remembered for five minutes.
DEDUP_WINDOW_S = 300.0


class ManualClock:
    """A clock that moves only when told to: ``clock()`` is now, ``advance(s)`` moves it on."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


# -- event store ---------------------------------------------------------------------------------

@dataclass
class _StoredItem:
    event: StoredEvent
    expires_at: int


class MemoryEventStore:
    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._sessions: dict[str, SessionRecord] = {}
        self._clients: dict[tuple[str, str], ClientRecord] = {}
        # By (session id, incarnation): an earlier incarnation's events stay, as on DynamoDB.
        self._events: dict[tuple[str, str], dict[int, _StoredItem]] = {}
        self._last_refresh: dict[str, float] = {}
        # FANOUT# items: (session, incarnation, client) -> (live queue URL, expires_at).
        self._fanout: dict[tuple[str, str, str], tuple[str, int]] = {}
        # COUNTER# items: (session, name) -> count; roster_seq is METADATA's, kept beside it.
        self._counters: dict[tuple[str, str], int] = {}
        self._reserved_at: dict[tuple[str, str], float] = {}
        self._roster_seq: dict[str, int] = {}

    # -- sessions

    def create_session(self, session_id: str, title: str | None, ttl_s: int) -> tuple[SessionRecord, bool]:
        now = self._clock()
        with self._lock:
            existing = self._sessions.get(session_id)
            # As DynamoDB's condition: "... OR expires_at < ceil(now) OR status = ended".
            if existing is not None and not existing.expires_at < math.ceil(now) and existing.active:
                current = self.get_session(session_id)
                if current is not None:
                    return current, False
            record = SessionRecord(
                session_id=session_id, status="active", seq=0, master_client_id=None, created_at=now,
                title=title, snapshot_seq=0, snapshot_key=None, expires_at=int(now + ttl_s), fanout_version=0,
                last_sweep=0.0, incarnation=new_incarnation(),
            )
            # The whole METADATA item is replaced, its claims (refresh, roster) with it.
            self._sessions[session_id] = record
            self._roster_seq[session_id] = 0
            self._last_refresh.pop(session_id, None)
            return _copy_session(record), True

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or record.expires_at < self._clock():
                return None
            return _copy_session(record)

    def require_session(self, session_id: str, *, active: bool = True) -> SessionRecord:
        return required_session(self.get_session(session_id), session_id, active=active)

    def active_session_ids(self) -> tuple[list[str], list[str]]:
        now = self._clock()
        with self._lock:
            candidates = [r for r in self._sessions.values() if r.active]
        live = [r.session_id for r in candidates if not r.expires_at < now]
        expired = [r.session_id for r in candidates if r.expires_at < now]
        return live, expired

    def recent_sessions(self, limit: int) -> list[SessionRecord]:
        now = self._clock()
        with self._lock:
            live = [r for r in self._sessions.values() if r.active and not r.expires_at < now]
        live.sort(key=lambda r: (r.created_at, r.session_id), reverse=True)
        return [_copy_session(r) for r in live[:max(limit, 0)]]

    def set_master(self, session_id: str, new_master: str, expected: str | None, *,
                   silent_before: float | None = None) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or not record.active or record.master_client_id != expected:
                return False
            if expected is not None and silent_before is not None and record.master_heartbeat >= silent_before:
                return False
            self._sessions[session_id] = replace(record, master_client_id=new_master, master_heartbeat=self._clock())
            return True

    def mark_ended(self, session_id: str) -> None:
        self._update(session_id, status="ended")

    def add_to_fanout(self, session_id: str, client_id: str, live_queue_url: str, *, incarnation: str,
                      expires_at: int) -> int:
        with self._lock:
            self._existing(session_id)
            self._fanout[(session_id, incarnation, client_id)] = (live_queue_url, expires_at)
            return self._bump(session_id, "fanout_version")

    def remove_from_fanout(self, session_id: str, client_id: str, *, incarnation: str) -> int:
        with self._lock:
            self._fanout.pop((session_id, incarnation, client_id), None)
            return self._bump(session_id, "fanout_version")

    def fanout(self, session_id: str, *, incarnation: str | None = None) -> tuple[int, dict[str, str]]:
        now = self._clock()
        with self._lock:
            session = self.require_session(session_id, active=False)
            wanted = session.incarnation if incarnation is None else incarnation
            return session.fanout_version, {cid: url for (sid, inc, cid), (url, expires_at) in self._fanout.items()
                                            if sid == session_id and inc == wanted and not expires_at < now}

    def _bump(self, session_id: str, attribute: str) -> int:
        with self._lock:
            record = self._existing(session_id)
            changes: dict[str, Any] = {attribute: int(getattr(record, attribute)) + 1}
            self._sessions[session_id] = replace(record, **changes)
            return int(changes[attribute])

    def touch_master(self, session_id: str, client_id: str, now: float) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or record.master_client_id != client_id:
                return False
            self._sessions[session_id] = replace(record, master_heartbeat=now)
            return True

    def bump_roster(self, session_id: str) -> None:
        self._bump(session_id, "roster_version")

    def claim_roster(self, session_id: str, previous: float, now: float) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or record.roster_announced_at != previous:
                return False
            self._sessions[session_id] = replace(record, roster_announced_at=now)
            return True

    def mark_roster_announced(self, session_id: str, version: int, seq: int) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or not self._roster_seq.get(session_id, 0) < seq:
                return False
            self._roster_seq[session_id] = seq
            self._sessions[session_id] = replace(record, roster_announced=version)
            return True

    def reserve_slot(self, session_id: str, counter: str, limit: int, *, expires_at: int) -> bool:
        with self._lock:
            count = self._counters.get((session_id, counter), 0)
            if count >= limit:
                return False
            self._counters[(session_id, counter)] = count + 1
            self._reserved_at[(session_id, counter)] = self._clock()
            return True

    def release_slot(self, session_id: str, counter: str) -> None:
        with self._lock:
            count = self._counters.get((session_id, counter), 0)
            if count > 0:
                self._counters[(session_id, counter)] = count - 1

    def slots(self, session_id: str, counter: str) -> int:
        with self._lock:
            return self._counters.get((session_id, counter), 0)

    def set_slots(self, session_id: str, counter: str, value: int, *, expected: int, quiet_since: float) -> bool:
        with self._lock:
            key = (session_id, counter)
            if self._counters.get(key) != expected or self._reserved_at.get(key, quiet_since) > quiet_since:
                return False
            self._counters[key] = value
            return True

    def claim_sweep(self, session_id: str, previous: float, now: float) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or record.last_sweep != previous:
                return False
            self._sessions[session_id] = replace(record, last_sweep=now)
            return True

    def claim_refresh(self, session_id: str, not_after: float, now: float) -> bool:
        with self._lock:
            if session_id not in self._sessions:
                return False
            last = self._last_refresh.get(session_id)
            if last is not None and last > not_after:
                return False
            self._last_refresh[session_id] = now
            return True

    def set_snapshot(self, session_id: str, seq: int, key: str) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or not record.snapshot_seq < seq:
                return False
            self._sessions[session_id] = replace(record, snapshot_seq=seq, snapshot_key=key)
            return True

    def _existing(self, session_id: str) -> SessionRecord:
        record = self._sessions.get(session_id)
        if record is None:
            # DynamoDB's UpdateItem would create a fragment of an item here; the service never asks.
            raise UpstreamError(f"no METADATA item for session {session_id!r}")
        return record

    def _update(self, session_id: str, **changes: Any) -> None:
        with self._lock:
            self._sessions[session_id] = replace(self._existing(session_id), **changes)

    # -- clients

    def put_client(self, record: ClientRecord) -> None:
        with self._lock:
            self._clients[(record.session_id, record.client_id)] = record

    def get_client(self, session_id: str, client_id: str) -> ClientRecord | None:
        with self._lock:
            return self._clients.get((session_id, client_id))

    def list_clients(self, session_id: str, *, active_only: bool = True) -> list[ClientRecord]:
        with self._lock:
            clients = [c for (sid, _), c in self._clients.items() if sid == session_id]
        if active_only:
            clients = [c for c in clients if c.active]
        return sorted(clients, key=lambda c: (c.joined_at, c.client_id))

    def touch_client(self, session_id: str, client_id: str) -> bool:
        with self._lock:
            record = self._clients.get((session_id, client_id))
            if record is None:
                return False
            self._clients[(session_id, client_id)] = replace(record, last_heartbeat=self._clock(), away=False)
            return record.away

    def mark_client_away(self, session_id: str, client_id: str, silent_since: float) -> bool:
        with self._lock:
            record = self._clients.get((session_id, client_id))
            if record is None or not record.active or record.away or not record.last_heartbeat < silent_since:
                return False
            self._clients[(session_id, client_id)] = replace(record, away=True)
            return True

    def mark_client_gone(self, session_id: str, client_id: str) -> bool:
        with self._lock:
            record = self._clients.get((session_id, client_id))
            if record is None or not record.active:
                return False
            self._clients[(session_id, client_id)] = replace(record, status="gone")
            return True

    # -- events

    def append(self, session_id: str, kind: str, s3_key: str | None, payload: dict[str, Any] | None,
               ttl_s: int, *, allow_ended: bool = False) -> Appended:
        session = self.require_session(session_id, active=not allow_ended)
        # Stored as JSON, as DynamoDB holds it: the caller's dict is not shared with the log.
        stored_payload = None if payload is None else json.loads(json.dumps(payload, sort_keys=True))
        with self._lock:
            log = self._events.setdefault((session_id, session.incarnation), {})
            seq = session.seq
            for _ in range(APPEND_ATTEMPTS):
                seq += 1
                if seq in log:
                    # Taken, by a racing writer or by a predecessor of this id whose items outlived it.
                    continue
                now = self._clock()
                event = StoredEvent(seq=seq, type=kind, ts=now, s3_key=s3_key, payload=stored_payload,
                                    incarnation=session.incarnation)
                log[seq] = _StoredItem(event, int(now + ttl_s))
                record = self._sessions[session_id]
                # As DynamoDB's hint: only within the event's incarnation.
                if record.seq < seq and record.incarnation == session.incarnation:
                    record = replace(record, seq=seq)
                    self._sessions[session_id] = record
                return Appended(_copy_event(event), record.fanout_version)
        raise Conflict(f"Too many concurrent writers on session {session_id!r}; try again.")

    def events_after(self, session_id: str, after_seq: int, limit: int | None = None, *,
                     incarnation: str | None = None) -> list[StoredEvent]:
        now = self._clock()
        if incarnation is None:
            session = self.get_session(session_id)
            if session is None:
                return []
            incarnation = session.incarnation
        with self._lock:
            items = sorted(self._events.get((session_id, incarnation), {}).items())
        events = [_copy_event(item.event) for seq, item in items if seq > after_seq and not item.expires_at < now]
        return events if limit is None else events[:limit]


def _copy_session(record: SessionRecord) -> SessionRecord:
    return replace(record)


def _copy_event(event: StoredEvent) -> StoredEvent:
    return replace(event, payload=None if event.payload is None else json.loads(json.dumps(event.payload)))


# -- browser queues ------------------------------------------------------------------------------

@dataclass
class _Message:
    body: str
    dedup_id: str
    group: str
    sent_at: float
    visible_at: float = 0.0
    # Every receipt handed out for it: as on moto, any of them deletes it.
    receipts: set[str] = field(default_factory=set)


@dataclass
class _Queue:
    messages: list[_Message] = field(default_factory=list)
    # dedup id -> when it was first accepted (SQS drops a repeat within the window).
    dedup: dict[str, float] = field(default_factory=dict)


class MemoryBrowserQueues:
    """FIFO queues, grouped as ``SqsBrowserQueues`` groups them, on the injected clock."""

    def __init__(self, prefix: str, visibility_timeout_s: int = 10, clock: Clock = time.time) -> None:
        self._prefix = prefix
        self._visibility = visibility_timeout_s
        self._clock = clock
        self._queues: dict[str, _Queue] = {}
        self._changed = threading.Condition()
        self._receipts = itertools.count(1)

    def url_of(self, name: str) -> str:
        return f"https://sqs.us-east-1.memory.invalid/{MEMORY_ACCOUNT}/{name}"

    def names(self, session_id: str, client_id: str) -> tuple[str, str]:
        return queue_names(self._prefix, session_id, client_id)

    def create(self, session_id: str, client_id: str) -> QueuePair:
        live, history = (self.url_of(name) for name in self.names(session_id, client_id))
        with self._changed:
            for url in (live, history):
                self._queues.setdefault(url, _Queue())
        return QueuePair(live, history)

    def exists(self, url: str) -> bool:
        with self._changed:
            return url in self._queues

    def send(self, url: str, envelope: Envelope, dedup_id: str) -> None:
        self._send(url, [(envelope, dedup_id, live_group_id(dedup_id))])

    def send_all(self, url: str, envelopes: Sequence[Envelope], dedup_prefix: str) -> None:
        self._send(url, [(env, f"{dedup_prefix}-{i}", HISTORY_GROUP_ID) for i, env in enumerate(envelopes)])

    def _send(self, url: str, entries: Sequence[tuple[Envelope, str, str]]) -> None:
        now = self._clock()
        with self._changed:
            queue = self._queues.get(url)
            if queue is None:
                raise QueueMissing(url)
            for envelope, dedup_id, group in entries:
                first = queue.dedup.get(dedup_id)
                if first is not None and now - first < DEDUP_WINDOW_S:
                    continue
                queue.dedup[dedup_id] = now
                queue.messages.append(_Message(envelope.to_json(), dedup_id, group, now))
            self._changed.notify_all()

    def receive(self, url: str, wait_seconds: int, max_messages: int, *, visibility_timeout_s: int | None = None
                ) -> list[tuple[str, str]]:
        # The long poll waits in real time (it is I/O); visibility follows the injected clock.
        visibility = self._visibility if visibility_timeout_s is None else visibility_timeout_s
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            while True:
                queue = self._queues.get(url)
                if queue is None:
                    raise Gone("This browser's queue no longer exists; join the session again.")
                batch = self._take(queue, max_messages, visibility)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0:
                    return batch
                self._changed.wait(remaining)

    def _take(self, queue: _Queue, max_messages: int, visibility: int) -> list[tuple[str, str]]:
        now = self._clock()
        # A group with a message in flight hands out nothing after it (as moto and SQS do).
        held = {message.group for message in queue.messages if message.visible_at > now}
        batch: list[tuple[str, str]] = []
        for message in queue.messages:
            if len(batch) >= max_messages:
                break
            if message.visible_at > now or message.group in held:
                continue
            receipt = f"memory-receipt-{next(self._receipts)}"
            message.receipts.add(receipt)
            message.visible_at = now + visibility
            batch.append((receipt, message.body))
        return batch

    def delete(self, url: str, receipt_handles: Sequence[str]) -> int:
        wanted = set(receipt_handles)
        with self._changed:
            queue = self._queues.get(url)
            if queue is None:
                raise Gone("This browser's queue no longer exists; join the session again.")
            kept = [m for m in queue.messages if not m.receipts & wanted]
            deleted = len(queue.messages) - len(kept)
            queue.messages = kept
            self._changed.notify_all()
        return deleted

    def delete_queue(self, url: str) -> None:
        with self._changed:
            self._queues.pop(url, None)
            self._changed.notify_all()


# -- blobs ---------------------------------------------------------------------------------------

class MemoryBlobStore:
    def __init__(self, bucket: str = "pbfm-memory", clock: Clock = time.time) -> None:
        self._bucket = bucket
        self._clock = clock
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        return self._bucket

    def put_json(self, key: str, document: Any) -> int:
        body = encode_document(document)
        with self._lock:
            self._objects[key] = body
        return len(body)

    def get_json(self, key: str) -> Any:
        with self._lock:
            body = self._objects.get(key)
        if body is None:
            raise UpstreamError("reading a document from S3 failed: NoSuchKey")
        return json.loads(body)

    def presign(self, key: str, expires_s: int = PRESIGN_SECONDS) -> str:
        # The shape of an S3 presigned GET (path-style), deterministic for a given clock reading.
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        return (f"https://s3.memory.invalid/{self._bucket}/{quote(key)}"
                f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}&X-Amz-Expires={expires_s}")

    def list_keys(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))


# -- the service on these backends ----------------------------------------------------------------

def memory_service(settings: Settings | None = None, clock: Clock = time.time) -> SessionService:
    """A ``SessionService`` on in-memory backends, every part of it on the one ``clock``."""
    settings = settings or Settings()
    return SessionService(
        settings,
        MemoryEventStore(clock),
        MemoryBrowserQueues(settings.queue_prefix, settings.queue_visibility_timeout_s, clock),
        MemoryBlobStore(settings.bucket_name, clock),
        clock=clock,
    )
