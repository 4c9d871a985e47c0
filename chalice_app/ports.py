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
    # The fan-out set: live queue URL of every active browser, by client id. Kept on this one item
    # so a publish reads it with the same write that advances the sequence (no Query per event).
    fanout: dict[str, str]
    last_sweep: float
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
    # The fan-out set as read *after* the event was stored: a browser added before this read gets
    # the event live; one added after it finds the event in its history.
    fanout: dict[str, str]


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

        An expired or ended one is replaced by a new incarnation: nothing of the old one (events,
        clients) is visible through the new one, even while its items are still stored.
        """
        ...

    def get_session(self, session_id: str) -> SessionRecord | None: ...

    def require_session(self, session_id: str, *, active: bool = True) -> SessionRecord: ...

    def active_session_ids(self) -> tuple[list[str], list[str]]:
        """Sessions not ended: (live ones, ones whose TTL has passed)."""
        ...

    def set_master(self, session_id: str, new_master: str, expected: str | None) -> bool:
        """Compare-and-set on an active session; False when the master is no longer ``expected``."""
        ...

    def mark_ended(self, session_id: str) -> None: ...

    def add_to_fanout(self, session_id: str, client_id: str, live_queue_url: str) -> None: ...

    def remove_from_fanout(self, session_id: str, client_id: str) -> None: ...

    def claim_sweep(self, session_id: str, previous: float, now: float) -> bool:
        """Compare-and-set ``last_sweep`` from ``previous`` to ``now``."""
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
        """Ordered by (joined_at, client_id): the longest-connected first."""
        ...

    def touch_client(self, session_id: str, client_id: str) -> None: ...

    def mark_client_gone(self, session_id: str, client_id: str) -> bool:
        """Active → gone, once: True only for the caller that made the change."""
        ...

    def append(self, session_id: str, kind: str, s3_key: str | None, payload: dict[str, Any] | None,
               ttl_s: int, *, allow_ended: bool = False) -> Appended:
        """Store an event under the next free sequence number (no gap, no duplicate under races)."""
        ...

    def events_after(self, session_id: str, after_seq: int, limit: int | None = None) -> list[StoredEvent]:
        """The current incarnation's events after ``after_seq``, in order."""
        ...


class BrowserQueues(Protocol):
    """Each browser's two FIFO queues (live and history), one message group each.

    ``send``/``send_all`` raise ``QueueMissing`` for a deleted queue; ``receive``/``delete`` raise
    ``Gone``; ``delete_queue`` of a missing queue does nothing.
    """

    def names(self, session_id: str, client_id: str) -> tuple[str, str]: ...

    def create(self, session_id: str, client_id: str) -> QueuePair:
        """Create both queues (idempotent: an existing queue keeps its URL and messages)."""
        ...

    def exists(self, url: str) -> bool: ...

    def send(self, url: str, envelope: Envelope, dedup_id: str) -> None: ...

    def send_all(self, url: str, envelopes: Sequence[Envelope], dedup_prefix: str) -> None: ...

    def receive(self, url: str, wait_seconds: int, max_messages: int) -> list[tuple[str, str]]:
        """Up to ``max_messages`` (receipt handle, body) in order; they stay invisible for the visibility timeout."""
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
