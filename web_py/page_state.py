"""What one page shows, and the pure reducer that moves it forward one event at a time.

Every browser of a session folds the same event log through ``apply`` and so shows the same state.
``PageState.to_dict()`` is also the snapshot document the server stores in S3 for late joiners, so
``from_dict(to_dict(s)) == s`` must hold exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from web_py.content import DEFAULT_LAYOUT, Layout, PriceQuote, check_decimal_string
from web_py.messages import (
    BY_REFERENCE,
    Envelope,
    MessageError,
    MessageType,
    is_valid_client_id,
)

SNAPSHOT_VERSION = 1
PRICE_HISTORY_LIMIT = 200
ROLES = ("master", "observer")
ROLE_CHANGE_REASONS = ("first_join", "failover", "transfer")
MAX_END_REASON = 200

Role = Literal["master", "observer"]


class SequenceError(ValueError):
    """An event offered out of order: a bug in the caller, not bad data from the server."""


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise MessageError(reason)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exact_keys(where: str, data: Any, keys: set[str]) -> dict[str, Any]:
    _check(isinstance(data, dict), f"{where} must be a JSON object")
    missing, unknown = keys - set(data), set(data) - keys
    _check(not missing, f"{where} is missing {sorted(missing)}")
    _check(not unknown, f"{where} has unknown fields {sorted(unknown)}")
    return data


def _client_id(where: str, value: Any, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    _check(is_valid_client_id(value), f"{where} is not a valid client id: {value!r}")
    return value


@dataclass(frozen=True)
class Participant:
    client_id: str
    role: Role
    joined_at: float  # epoch seconds, as stored on the CLIENT item
    # The session view inside an AI chat; the key is left out for every other participant.
    in_chat: bool = False

    def __post_init__(self) -> None:
        _client_id("participant client_id", self.client_id, nullable=False)
        _check(self.role in ROLES, f"participant role must be one of {ROLES}, got {self.role!r}")
        _check(
            isinstance(self.joined_at, (int, float)) and not isinstance(self.joined_at, bool),
            "participant joined_at must be epoch seconds",
        )
        _check(self.in_chat is True or self.in_chat is False, "participant in_chat must be a boolean")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"client_id": self.client_id, "role": self.role, "joined_at": self.joined_at}
        if self.in_chat:
            data["in_chat"] = True
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Participant:
        optional = {"in_chat"} if isinstance(data, dict) and "in_chat" in data else set()
        _exact_keys("participant", data, {"client_id", "role", "joined_at"} | optional)
        return cls(client_id=data["client_id"], role=data["role"], joined_at=data["joined_at"],
                   in_chat=data.get("in_chat", False))


def _participants(value: Any) -> tuple[Participant, ...]:
    _check(isinstance(value, (list, tuple)), "participants must be an array")
    people = tuple(p if isinstance(p, Participant) else Participant.from_dict(p) for p in value)
    ids = [p.client_id for p in people]
    _check(len(ids) == len(set(ids)), "participants lists a client twice")
    return people


@dataclass(frozen=True)
class PageState:
    last_seq: int = 0
    price: PriceQuote | None = None
    price_history: tuple[tuple[int, str], ...] = ()
    layout: Layout = DEFAULT_LAYOUT
    master_client_id: str | None = None
    participants: tuple[Participant, ...] = ()
    ended: bool = False
    end_reason: str | None = None

    def __post_init__(self) -> None:
        _check(_is_int(self.last_seq) and self.last_seq >= 0, "last_seq must be a non-negative integer")
        _check(self.price is None or isinstance(self.price, PriceQuote), "price must be a PriceQuote")
        _check(isinstance(self.layout, Layout), "layout must be a Layout")
        _client_id("master_client_id", self.master_client_id, nullable=True)
        object.__setattr__(self, "participants", _participants(self.participants))
        _check(isinstance(self.ended, bool), "ended must be a boolean")
        _check(
            self.end_reason is None
            or (isinstance(self.end_reason, str) and len(self.end_reason) <= MAX_END_REASON),
            "end_reason must be a short string or null",
        )
        _check(self.ended or self.end_reason is None, "end_reason is set on a session that has not ended")
        object.__setattr__(self, "price_history", _price_history(self.price_history, self.last_seq))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SNAPSHOT_VERSION,
            "last_seq": self.last_seq,
            "price": None if self.price is None else self.price.to_dict(),
            "price_history": [[seq, price] for seq, price in self.price_history],
            "layout": self.layout.to_dict(),
            "master_client_id": self.master_client_id,
            "participants": [p.to_dict() for p in self.participants],
            "ended": self.ended,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PageState:
        _exact_keys(
            "page state",
            data,
            {"v", "last_seq", "price", "price_history", "layout", "master_client_id", "participants",
             "ended", "end_reason"},
        )
        _check(data["v"] == SNAPSHOT_VERSION, f"unsupported page state version {data['v']!r}")
        return cls(
            last_seq=data["last_seq"],
            price=None if data["price"] is None else PriceQuote.from_dict(data["price"]),
            price_history=data["price_history"],
            layout=Layout.from_dict(data["layout"]),
            master_client_id=data["master_client_id"],
            participants=data["participants"],
            ended=data["ended"],
            end_reason=data["end_reason"],
        )


class _CheckedHistory(tuple[tuple[int, str], ...]):
    """Price points already validated: rechecking 200 decimals on every event dominated apply()."""

    __slots__ = ()


def _price_history(value: Any, last_seq: int) -> tuple[tuple[int, str], ...]:
    if isinstance(value, _CheckedHistory):
        _check(not value or value[-1][0] <= last_seq, "price_history runs past last_seq")
        return value
    _check(isinstance(value, (list, tuple)), "price_history must be an array")
    _check(len(value) <= PRICE_HISTORY_LIMIT, f"price_history holds at most {PRICE_HISTORY_LIMIT} points")
    points: list[tuple[int, str]] = []
    for i, point in enumerate(value):
        pair_ok = isinstance(point, (list, tuple)) and len(point) == 2
        _check(pair_ok, f"price_history[{i}] must be [seq, price]")
        seq, price = point
        _check(_is_int(seq) and 1 <= seq <= last_seq, f"price_history[{i}] has a bad seq {seq!r}")
        _check(not points or points[-1][0] < seq, "price_history must be in increasing seq order")
        check_decimal_string(f"price_history[{i}] price", price)
        points.append((seq, price))
    return _CheckedHistory(points)


def role_of(state: PageState, client_id: str) -> Role | None:
    """This client's role as the page knows it; None if it is not (yet) listed in the session."""
    if client_id == state.master_client_id:
        return "master"
    if any(p.client_id == client_id for p in state.participants):
        return "observer"
    return None


def apply(state: PageState, envelope: Envelope, document: Any = None) -> PageState:
    """Apply one message to ``state`` and return the new state.

    ``document`` is the parsed JSON behind ``envelope.s3_key`` for by-reference types (price quote,
    layout, snapshot) and must be None for inline ones. A SNAPSHOT replaces the state outright;
    an event must carry exactly ``state.last_seq + 1``.
    """
    _check(isinstance(envelope, Envelope), "apply needs an Envelope")
    kind = envelope.type
    if kind in BY_REFERENCE:
        _check(document is not None, f"{kind.value} needs the document behind {envelope.s3_key!r}")
    else:
        _check(document is None, f"{kind.value} carries its payload inline; no document expected")

    if kind is MessageType.SNAPSHOT:
        snapshot = PageState.from_dict(document)
        _check(
            snapshot.last_seq == envelope.seq,
            f"snapshot document is at seq {snapshot.last_seq}, the message says {envelope.seq}",
        )
        return snapshot
    if kind is MessageType.END_OF_HISTORY:
        raise MessageError("END_OF_HISTORY is a queue marker, not something to apply to the page")
    if envelope.seq != state.last_seq + 1:
        raise SequenceError(f"event seq {envelope.seq} does not follow last_seq {state.last_seq}")

    # Advance first: the new state's own checks (price_history seqs <= last_seq) see the event's seq.
    return _REDUCERS[kind](replace(state, last_seq=envelope.seq), envelope, document)


def _price_update(state: PageState, envelope: Envelope, document: Any) -> PageState:
    price = PriceQuote.from_dict(document)
    # The old points are checked and the new seq exceeds them all, so the result is checked too.
    history = _CheckedHistory(
        (*state.price_history, (envelope.seq, price.display_price))[-PRICE_HISTORY_LIMIT:]
    )
    return replace(state, price=price, price_history=history)


def _layout_update(state: PageState, envelope: Envelope, document: Any) -> PageState:
    return replace(state, layout=Layout.from_dict(document))


def _role_change(state: PageState, envelope: Envelope, document: Any) -> PageState:
    payload = _exact_keys(
        "ROLE_CHANGE payload", envelope.payload, {"master_client_id", "previous_master_client_id", "reason"}
    )
    master = _client_id("ROLE_CHANGE master_client_id", payload["master_client_id"], nullable=False)
    _client_id("ROLE_CHANGE previous_master_client_id", payload["previous_master_client_id"], nullable=True)
    _check(
        payload["reason"] in ROLE_CHANGE_REASONS,
        f"ROLE_CHANGE reason must be one of {ROLE_CHANGE_REASONS}",
    )
    # Keep the participant list consistent with the master until the next PARTICIPANTS event.
    people = tuple(
        replace(p, role="master" if p.client_id == master else "observer") for p in state.participants
    )
    return replace(state, master_client_id=master, participants=people)


def _participants_event(state: PageState, envelope: Envelope, document: Any) -> PageState:
    payload = _exact_keys("PARTICIPANTS payload", envelope.payload, {"master_client_id", "participants"})
    master = _client_id("PARTICIPANTS master_client_id", payload["master_client_id"], nullable=True)
    return replace(state, master_client_id=master, participants=_participants(payload["participants"]))


def _session_ended(state: PageState, envelope: Envelope, document: Any) -> PageState:
    payload = _exact_keys("SESSION_ENDED payload", envelope.payload, {"reason", "archive_key"})
    reason = payload["reason"]
    _check(
        isinstance(reason, str) and len(reason) <= MAX_END_REASON,
        "SESSION_ENDED reason must be a short string",
    )
    _check(payload["archive_key"] is None or isinstance(payload["archive_key"], str), "bad archive_key")
    return replace(state, ended=True, end_reason=reason)


_REDUCERS = {
    MessageType.PRICE_UPDATE: _price_update,
    MessageType.LAYOUT_UPDATE: _layout_update,
    MessageType.ROLE_CHANGE: _role_change,
    MessageType.PARTICIPANTS: _participants_event,
    MessageType.SESSION_ENDED: _session_ended,
}
