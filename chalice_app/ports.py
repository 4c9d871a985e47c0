"""What the session service needs from storage and transport, and the records that cross it.

Three ports: the event store (sessions, browsers, the sequenced event log), the browsers' queues
and the blob store. The boto3 implementations (``event_store``, ``queues``, ``blobs``) are the
only code that touches AWS; in-memory ones with the same semantics live in the tooling package for
fast tests, and one contract suite (``tests/contract``) runs the same tests against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chalice_app.errors import Gone, NotFound
from web_py.messages import Envelope


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    status: str
    seq: int
    master_client_id: str | None
    created_at: float
    title: str | None
    snapshot_seq: int
    snapshot_key: str | None
    expires_at: int
    # Bumped after every change of the fan-out set (its entries are items of their own, one per
    # browser): a publish reads it with the write that advances the sequence, and re-reads the set
    # only when it differs from the version it holds (no Query per event in the common case).
    fanout_version: int
    last_sweep: float
    # The master's last heartbeat, so any request can see a silent master without a Query.
    master_heartbeat: float = 0.0
    # Bumped on every join and removal; the participant list was last announced at this version.
    roster_version: int = 0
    roster_announced: int = 0
    roster_announced_at: float = 0.0
    # Made afresh each time the id is (re)created: keys, client ids and messages of one
    # incarnation never meet another's. "" for sessions stored before incarnations existed.
    incarnation: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class ClientRecord:
    session_id: str
    client_id: str
    status: str
    joined_at: float
    last_heartbeat: float
    live_queue_url: str
    history_queue_url: str
    expires_at: int
    # The signed browser profile this tab belongs to (None when not known): tabs are counted per browser.
    browser_id: str | None = None
    # Silent for longer than the heartbeat timeout (not yet removed): not listed as watching.
    away: bool = False
    # The session view inside an AI chat (an MCP App, identified by a view token): listed as "in
    # chat", and never made master except by the AI's explicit transfer.
    in_chat: bool = False
    incarnation: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    type: str
    ts: float
    s3_key: str | None
    payload: dict[str, Any] | None
    incarnation: str = ""


@dataclass(frozen=True)
class Appended:
    event: StoredEvent
    # The fan-out version as read *after* the event was stored: a browser whose fan-out entry was
    # counted in it gets the event live; one added after it finds the event in its history.
    fanout_version: int


@dataclass(frozen=True)
class QueuePair:
    live_url: str
    history_url: str


class QueueMissing(Exception):
    """The queue was deleted under us (client gone, session ended, or chaos)."""


class EventStore(Protocol):
    """Sessions, their browsers and their event log. Expired items are invisible to every read.

    Raises ``NotFound``/``Gone`` (``require_session``), ``Conflict`` (too many racing writers) and
    ``UpstreamError`` (the backend failed), all from ``chalice_app.errors``.
    """

    def create_session(self, session_id: str, title: str | None, ttl_s: int) -> tuple[SessionRecord, bool]:
        """Create, or return the live session of that id unchanged (``created`` False).

        An expired or ended one is replaced by a new incarnation: its METADATA starts afresh (seq,
        master, fan-out version, roster, sweep and refresh claims) and the old one's events and
        fan-out entries are never read through the new one, even while their items are still stored.
        Browser records keep the incarnation they joined (``ClientRecord.incarnation``).
        """
        ...

    def get_session(self, session_id: str) -> SessionRecord | None: ...

    def require_session(self, session_id: str, *, active: bool = True) -> SessionRecord: ...

    def active_session_ids(self) -> tuple[list[str], list[str]]:
        """Sessions not ended: (live ones, ones whose TTL has passed)."""
        ...

    def recent_sessions(self, limit: int) -> list[SessionRecord]:
        """Live sessions (neither ended nor expired), newest first (by ``created_at``), at most ``limit``."""
        ...

    def set_master(self, session_id: str, new_master: str, expected: str | None, *,
                   silent_before: float | None = None) -> bool:
        """Compare-and-set on an active session; False when the master is no longer ``expected``, or
        (with ``silent_before``) when its last heartbeat is no longer older than that time."""
        ...

    def mark_ended(self, session_id: str) -> None: ...

    def add_to_fanout(self, session_id: str, client_id: str, live_queue_url: str, *, incarnation: str,
                      expires_at: int) -> int:
        """Store the browser's fan-out entry (in that incarnation's set, gone at ``expires_at``: the
        session's), then bump the version (in that order); returns the new version."""
        ...

    def remove_from_fanout(self, session_id: str, client_id: str, *, incarnation: str) -> int:
        """Delete the entry, then bump the version; returns the new version."""
        ...

    def fanout(self, session_id: str, *, incarnation: str | None = None) -> tuple[int, dict[str, str]]:
        """The incarnation's fan-out set (client id → live queue URL) with a version read *before* it
        (strongly consistent); None: the session's current incarnation. Another incarnation's
        entries are never part of it."""
        ...

    def claim_sweep(self, session_id: str, previous: float, now: float) -> bool:
        """Compare-and-set ``last_sweep`` from ``previous`` to ``now``."""
        ...

    def touch_master(self, session_id: str, client_id: str, now: float) -> bool:
        """Record the master's heartbeat on METADATA; False when ``client_id`` is not the master."""
        ...

    def reserve_slot(self, session_id: str, counter: str, limit: int, *, expires_at: int) -> bool:
        """Count one more in ``counter`` unless it already holds ``limit``; False when full.

        Also records when (store clock), so that ``set_slots`` can leave a join in flight alone. The
        counter lives until ``expires_at`` (the session's).
        """
        ...

    def release_slot(self, session_id: str, counter: str) -> None:
        """Count one less in ``counter`` (never below zero)."""
        ...

    def slots(self, session_id: str, counter: str) -> int: ...

    def set_slots(self, session_id: str, counter: str, value: int, *, expected: int, quiet_since: float) -> bool:
        """Correct a counter to what was counted (the sweep's repair after a crash between steps).

        Only from ``expected`` (the value the count was compared with) and only if no place was
        reserved after ``quiet_since``: a join takes its place before its browser is registered,
        so a recent reservation may belong to a browser not listed yet. False when not applied.
        """
        ...

    def bump_roster(self, session_id: str) -> None:
        """The participant list changed (a join, a removal, a browser gone silent or back): O(1)."""
        ...

    def claim_roster(self, session_id: str, previous: float, now: float) -> bool:
        """Compare-and-set ``roster_announced_at``: one announcer per coalescing interval."""
        ...

    def mark_roster_announced(self, session_id: str, version: int, seq: int) -> bool:
        """The list as of ``version`` went out as event ``seq``; ignored if a later event already did."""
        ...

    def set_snapshot(self, session_id: str, seq: int, key: str) -> bool:
        """Record a snapshot only if it is newer than the recorded one."""
        ...

    def claim_refresh(self, session_id: str, not_after: float, now: float) -> bool:
        """Set ``last_refresh`` to ``now`` only if it is absent or at most ``not_after`` (a rate limit
        that holds across every server instance)."""
        ...

    def put_client(self, record: ClientRecord) -> None: ...

    def get_client(self, session_id: str, client_id: str) -> ClientRecord | None: ...

    def list_clients(self, session_id: str, *, active_only: bool = True) -> list[ClientRecord]:
        """Ordered by (joined_at, client_id): the longest-connected first. Of every incarnation
        (each record says its own): the session service keeps to the current one."""
        ...

    def touch_client(self, session_id: str, client_id: str) -> bool:
        """Record a heartbeat; True when the browser had been marked away (it is back)."""
        ...

    def mark_client_away(self, session_id: str, client_id: str, silent_since: float) -> bool:
        """Mark an active browser silent since before ``silent_since`` as away, once: True for the caller that did."""
        ...

    def mark_client_gone(self, session_id: str, client_id: str) -> bool:
        """Active → gone, once: True only for the caller that made the change."""
        ...

    def append(self, session_id: str, kind: str, s3_key: str | None, payload: dict[str, Any] | None,
               ttl_s: int, *, allow_ended: bool = False) -> Appended:
        """Store an event under the next free sequence number (no gap, no duplicate under races)."""
        ...

    def events_after(self, session_id: str, after_seq: int, limit: int | None = None, *,
                     incarnation: str | None = None) -> list[StoredEvent]:
        """The incarnation's events after ``after_seq``, in order (another incarnation's never).

        ``incarnation`` None: the session's current one (one more read; none when there is no session).
        """
        ...


class BrowserQueues(Protocol):
    """Each browser's two FIFO queues (live and history).

    ``send`` (a live event) puts its message in a message group of its own, so a received message
    not yet deleted holds nothing back; ``send_all`` (a history) puts its messages in one group, in
    order, so a batch in flight holds back the rest. ``send``/``send_all`` raise ``QueueMissing`` for
    a deleted queue; ``receive``/``delete`` raise ``Gone``; ``delete_queue`` of a missing queue does
    nothing.
    """

    def names(self, session_id: str, client_id: str) -> tuple[str, str]: ...

    def create(self, session_id: str, client_id: str) -> QueuePair:
        """Create both queues (idempotent: an existing queue keeps its URL and messages)."""
        ...

    def exists(self, url: str) -> bool: ...

    def send(self, url: str, envelope: Envelope, dedup_id: str) -> None: ...

    def send_all(self, url: str, envelopes: Sequence[Envelope], dedup_prefix: str) -> None: ...

    def receive(self, url: str, wait_seconds: int, max_messages: int, *, visibility_timeout_s: int | None = None
                ) -> list[tuple[str, str]]:
        """Up to ``max_messages`` (receipt handle, body) in order; they stay invisible for
        ``visibility_timeout_s`` (None: the queue's own visibility timeout)."""
        ...

    def delete(self, url: str, receipt_handles: Sequence[str]) -> int:
        """Delete by receipt handle; returns how many were deleted (a stale handle is no error)."""
        ...

    def delete_queue(self, url: str) -> None: ...


class BlobStore(Protocol):
    """Immutable JSON documents by key, readable by browsers through presigned URLs."""

    @property
    def bucket(self) -> str: ...

    def put_json(self, key: str, document: Any) -> int:
        """Store the document; returns its size in bytes."""
        ...

    def get_json(self, key: str) -> Any:
        """The document; ``UpstreamError`` when there is none."""
        ...

    def presign(self, key: str, expires_s: int = ...) -> str: ...

    def list_keys(self, prefix: str) -> list[str]: ...


def required_session(record: SessionRecord | None, session_id: str, *, active: bool = True) -> SessionRecord:
    """What every ``EventStore.require_session`` answers for the record its ``get_session`` found."""
    if record is None:
        raise NotFound(f"No session {session_id!r}. Create it first (webpage_create_session).")
    if active and not record.active:
        raise Gone(f"Session {session_id!r} has ended.")
    return record
