"""Turn messages from two queues (plus REST repairs) into exactly-once, in-order applies.

A page first drains its history queue (an optional SNAPSHOT, events, then END_OF_HISTORY) and then
its live queue. SQS FIFO deduplication only holds for five minutes and history overlaps live by
design, so correctness comes from our own sequence numbers: the processor decides, the caller does
the I/O. The protocol, one message at a time:

    decision = processor.offer("live", envelope, token=receipt_handle)
    Apply          -> fetch the document, state = page_state.apply(...), processor.applied(envelope),
                      then ack decision.token (if any)
    Drop           -> ack decision.token (if any); nothing to apply
    Gap            -> GET events after decision.after_seq and offer each with source "repair";
                      the gapped message is held here: do NOT ack it yet
    HistoryComplete-> ack decision.token; poll the live queue from now on
    then drain: while (d := processor.next_ready()) is not None: handle d the same way

Held messages come back from ``next_ready()`` with the token they were offered with, so the
caller never needs its own bookkeeping of receipt handles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from web_py.messages import Envelope, MessageType

Source = Literal["history", "live", "repair"]
Phase = Literal["history", "live"]
SOURCES: tuple[Source, ...] = ("history", "live", "repair")
DropKind = Literal["duplicate", "stale_snapshot", "foreign_session", "misplaced"]


@dataclass(frozen=True)
class Apply:
    """Apply ``envelope`` to the page state, call ``applied(envelope)``, then ack ``token``."""

    envelope: Envelope
    source: Source
    token: Any = None


@dataclass(frozen=True)
class Drop:
    """Nothing to apply; ack ``token`` if there is one."""

    kind: DropKind
    reason: str
    seq: int
    token: Any = None


@dataclass(frozen=True)
class Gap:
    """Events ``after_seq + 1 .. before_seq - 1`` are missing: fetch events after ``after_seq``."""

    after_seq: int
    before_seq: int


@dataclass(frozen=True)
class HistoryComplete:
    """The history queue is drained up to ``last_seq``; ack ``token`` and poll the live queue."""

    last_seq: int
    token: Any = None


Decision = Apply | Drop | Gap | HistoryComplete


@dataclass(frozen=True)
class ProcessorStats:
    applied: int = 0  # events applied (snapshots not included)
    snapshots: int = 0
    duplicates: int = 0  # dropped because already covered (by an event or a snapshot)
    rejected: int = 0  # dropped as foreign or misplaced: a server bug worth a look
    gaps: int = 0  # Gap decisions handed out
    repaired: int = 0  # events applied that came from a "repair" offer


class ProcessorStateError(RuntimeError):
    """The caller broke the protocol (e.g. offered a message while an Apply was unfinished)."""


@dataclass(frozen=True)
class _Held:
    envelope: Envelope
    source: Source
    token: Any


class DualQueueProcessor:
    def __init__(self, last_applied: int = 0, *, session_id: str | None = None) -> None:
        """``last_applied``: the seq the page state already reflects (0 for a fresh page).

        ``session_id``: messages of any other session are dropped; when None, the first message
        offered fixes it.
        """
        if not isinstance(last_applied, int) or isinstance(last_applied, bool) or last_applied < 0:
            raise ValueError("last_applied must be a non-negative integer")
        self._last_applied = last_applied
        self._session_id = session_id
        self._phase: Phase = "history"
        self._held: dict[int, _Held] = {}
        self._held_end: _Held | None = None
        self._superseded: list[_Held] = []  # held copies replaced by a fresher one: ack only
        self._known_last_seq = 0  # the highest seq the server said exists (see behind())
        self._in_flight: _Held | None = None
        self._counts = {name: 0 for name in ProcessorStats.__dataclass_fields__}

    # --- what the caller reads -------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def last_applied(self) -> int:
        return self._last_applied

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def in_flight(self) -> Envelope | None:
        """The envelope of the Apply awaiting ``applied``/``abandon``, if any."""
        return None if self._in_flight is None else self._in_flight.envelope

    @property
    def stats(self) -> ProcessorStats:
        return ProcessorStats(**self._counts)

    def queue_to_poll(self) -> Phase:
        return self._phase

    def pending(self) -> tuple[int, ...]:
        """Sequence numbers of held events (offered too early), in order."""
        return tuple(sorted(self._held))

    # --- the protocol ----------------------------------------------------------------------------

    def offer(self, source: Source, envelope: Envelope, token: Any = None) -> Decision:
        """Decide what to do with one message; ``token`` (e.g. a receipt handle) is handed back."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if not isinstance(envelope, Envelope):
            raise TypeError(f"offer needs an Envelope, got {type(envelope).__name__}")
        if self._in_flight is not None:
            raise ProcessorStateError(
                f"seq {self._in_flight.envelope.seq} is still being applied: "
                "call applied() or abandon() first"
            )
        if self._session_id is None:
            self._session_id = envelope.session_id
        item = _Held(envelope, source, token)
        if envelope.session_id != self._session_id:
            return self._reject("foreign_session", item, f"message of session {envelope.session_id!r}")
        if envelope.type is MessageType.SNAPSHOT:
            return self._offer_snapshot(item)
        if envelope.type is MessageType.END_OF_HISTORY:
            return self._offer_end_of_history(item)
        return self._offer_event(item)

    def applied(self, envelope: Envelope) -> None:
        """Confirm that the page state now reflects ``envelope`` (the one the last Apply named)."""
        if self._in_flight is None or self._in_flight.envelope != envelope:
            raise ProcessorStateError(f"applied() for seq {envelope.seq}, which is not the pending Apply")
        item, self._in_flight = self._in_flight, None
        self._last_applied = envelope.seq
        if envelope.type is MessageType.SNAPSHOT:
            self._counts["snapshots"] += 1
        else:
            self._counts["applied"] += 1
            if item.source == "repair":
                self._counts["repaired"] += 1

    def abandon(self, envelope: Envelope) -> None:
        """Give up on the pending Apply (e.g. its document could not be fetched).

        Nothing advances. Do not ack the message: the queue redelivers it, or the next message
        reveals a Gap that a repair fills.
        """
        if self._in_flight is None or self._in_flight.envelope != envelope:
            raise ProcessorStateError(f"abandon() for seq {envelope.seq}, which is not the pending Apply")
        self._in_flight = None

    def next_ready(self) -> Decision | None:
        """A held message that can now be settled (Apply, Drop or HistoryComplete), or None."""
        if self._in_flight is not None:
            return None
        if self._superseded:
            return self._duplicate(self._superseded.pop(0), "a fresher copy was applied")
        for seq in sorted(self._held):
            if seq > self._last_applied:
                break
            item = self._held.pop(seq)
            return self._duplicate(item, f"seq {seq} was covered while it was held")
        end = self._held_end
        if end is not None and end.envelope.seq <= self._last_applied:
            self._held_end = None
            return self._complete_history(end)
        successor = self._held.pop(self._last_applied + 1, None)
        if successor is not None:
            return self._start_apply(successor)
        return None

    def open_gap(self) -> Gap | None:
        """The gap still to repair, if any: held messages blocked, or behind what the server said.

        Loop ``while (gap := open_gap()) is not None`` after draining ``next_ready()``: a repair
        can fall short (the REST limit), and this keeps reporting until it is filled.
        """
        if self._in_flight is not None:
            return None
        blocked = [seq for seq in self._held if seq > self._last_applied + 1]
        if self._held_end is not None and self._held_end.envelope.seq > self._last_applied:
            blocked.append(self._held_end.envelope.seq + 1)
        if self._known_last_seq > self._last_applied:
            blocked.append(self._known_last_seq + 1)
        if not blocked or self._last_applied + 1 in self._held:
            return None
        return Gap(self._last_applied, min(blocked))

    def behind(self, known_last_seq: int) -> Gap | None:
        """A Gap if the server reports events (heartbeat, status) that this page has not seen.

        Catches a lost final message, which no later message would reveal. The target is
        remembered: ``open_gap()`` reports it until the page has caught up.
        """
        self._known_last_seq = max(self._known_last_seq, known_last_seq)
        if self._in_flight is not None or known_last_seq <= self._last_applied:
            return None
        return self._gap(known_last_seq + 1)

    # --- decisions -------------------------------------------------------------------------------

    def _offer_snapshot(self, item: _Held) -> Decision:
        if item.source != "history":
            return self._reject("misplaced", item, f"SNAPSHOT arrived from {item.source}, not history")
        if item.envelope.seq <= self._last_applied:
            self._counts["duplicates"] += 1
            reason = f"snapshot at seq {item.envelope.seq}, page already at {self._last_applied}"
            return Drop("stale_snapshot", reason, item.envelope.seq, item.token)
        # A snapshot needs no predecessor: it replaces the state wholesale.
        return self._start_apply(item)

    def _offer_end_of_history(self, item: _Held) -> Decision:
        if item.source != "history":
            return self._reject("misplaced", item, f"END_OF_HISTORY arrived from {item.source}")
        if self._phase == "live":
            return self._duplicate(item, "history already complete")
        if item.envelope.seq <= self._last_applied:
            return self._complete_history(item)
        # The history claims more than we got: hold the marker until a repair fills the tail.
        if self._held_end is not None:
            self._counts["duplicates"] += 1
            superseded, self._held_end = self._held_end, item
            return Drop("duplicate", "END_OF_HISTORY redelivered", item.envelope.seq, superseded.token)
        self._held_end = item
        return self._gap(item.envelope.seq + 1)

    def _offer_event(self, item: _Held) -> Decision:
        seq = item.envelope.seq
        if seq <= self._last_applied:
            return self._duplicate(item, f"seq {seq} is at or below last applied {self._last_applied}")
        if seq == self._last_applied + 1:
            held = self._held.pop(seq, None)
            if held is not None:
                # Happens when the caller offers before draining next_ready(): apply the fresh copy.
                self._superseded.append(held)
            return self._start_apply(item)
        previous = self._held.get(seq)
        self._held[seq] = item
        if previous is not None:
            # Keep the newest token: a redelivered SQS message invalidates the older receipt handle.
            self._counts["duplicates"] += 1
            return Drop("duplicate", f"seq {seq} is already held", seq, previous.token)
        return self._gap(seq)

    def _start_apply(self, item: _Held) -> Apply:
        self._in_flight = item
        return Apply(item.envelope, item.source, item.token)

    def _complete_history(self, item: _Held) -> HistoryComplete:
        self._phase = "live"
        return HistoryComplete(item.envelope.seq, item.token)

    def _gap(self, before_seq: int) -> Gap:
        self._counts["gaps"] += 1
        return Gap(self._last_applied, before_seq)

    def _duplicate(self, item: _Held, reason: str) -> Drop:
        self._counts["duplicates"] += 1
        return Drop("duplicate", reason, item.envelope.seq, item.token)

    def _reject(self, kind: DropKind, item: _Held, reason: str) -> Drop:
        self._counts["rejected"] += 1
        return Drop(kind, reason, item.envelope.seq, item.token)
