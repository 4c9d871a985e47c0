"""The message model shared by the server and the page.

Every message on a browser queue is one JSON ``Envelope``. Content travels by reference (an S3 key
plus a presigned URL; a live message may also carry a small document's copy in ``document``) or,
for small control data, inline in ``payload``. Parsing is strict: anything
malformed raises ``MessageError`` with a reason, never a half-built message.

Standard library only: this file is loaded as-is into Pyodide, where pydantic would cost a second of
boot.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

PROTOCOL_VERSION = 1

# Bounded so that "{prefix}-session-{sid}-browser-{cid}-history.fifo" fits SQS's 80 characters.
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
CLIENT_ID_PATTERN = re.compile(r"^[a-z0-9]{12}$")
# A session id's incarnation: made each time the id is (re)created; messages of one never apply to another.
INCARNATION_PATTERN = re.compile(r"^[a-z0-9]{1,16}$")
SESSION_ID_MAX = 24
CLIENT_ID_LENGTH = 12


class MessageError(ValueError):
    """A message that does not follow the model."""


class MessageType(StrEnum):
    PRICE_UPDATE = "PRICE_UPDATE"
    LAYOUT_UPDATE = "LAYOUT_UPDATE"
    ROLE_CHANGE = "ROLE_CHANGE"
    PARTICIPANTS = "PARTICIPANTS"
    SESSION_ENDED = "SESSION_ENDED"
    # Control messages: only ever on a history queue, never stored in the event log.
    SNAPSHOT = "SNAPSHOT"
    END_OF_HISTORY = "END_OF_HISTORY"


# Events that the server stores and sequences; the others are control messages of onboarding.
EVENT_TYPES = frozenset(
    {
        MessageType.PRICE_UPDATE,
        MessageType.LAYOUT_UPDATE,
        MessageType.ROLE_CHANGE,
        MessageType.PARTICIPANTS,
        MessageType.SESSION_ENDED,
    }
)
BY_REFERENCE = frozenset({MessageType.PRICE_UPDATE, MessageType.LAYOUT_UPDATE, MessageType.SNAPSHOT})
INLINE = frozenset({MessageType.ROLE_CHANGE, MessageType.PARTICIPANTS, MessageType.SESSION_ENDED})

_FIELDS = ("v", "session_id", "seq", "type", "ts", "s3_key", "url", "payload", "document", "incarnation")


def is_valid_session_id(value: object) -> bool:
    return isinstance(value, str) and SESSION_ID_PATTERN.match(value) is not None


def is_valid_client_id(value: object) -> bool:
    return isinstance(value, str) and CLIENT_ID_PATTERN.match(value) is not None


def is_valid_incarnation(value: object) -> bool:
    return isinstance(value, str) and INCARNATION_PATTERN.match(value) is not None


@dataclass(frozen=True)
class Envelope:
    session_id: str
    seq: int
    type: MessageType
    ts: float
    s3_key: str | None = None
    url: str | None = None
    payload: dict[str, Any] | None = None
    v: int = PROTOCOL_VERSION
    # A copy of the (small) document behind ``s3_key``, riding in a live message so the page need
    # not fetch it; the key stays, and the log, history and repairs carry the key alone.
    document: dict[str, Any] | None = None
    # Absent in messages stored before incarnations existed (and for such sessions).
    incarnation: str | None = None

    def __post_init__(self) -> None:
        _check(is_valid_session_id(self.session_id), f"session_id {self.session_id!r} is not a valid id")
        _check(isinstance(self.seq, int) and not isinstance(self.seq, bool), "seq must be an integer")
        _check(self.seq >= 0, "seq must not be negative")
        _check(isinstance(self.type, MessageType), "type must be a MessageType")
        _check(
            isinstance(self.ts, (int, float)) and not isinstance(self.ts, bool) and self.ts >= 0,
            "ts must be a non-negative number (epoch seconds)",
        )
        _check(self.s3_key is None or (isinstance(self.s3_key, str) and self.s3_key != ""), "bad s3_key")
        _check(self.url is None or isinstance(self.url, str), "url must be a string")
        _check(self.payload is None or isinstance(self.payload, dict), "payload must be an object")
        _check(self.document is None or isinstance(self.document, dict), "document must be an object")
        _check(self.document is None or self.type in BY_REFERENCE,
               f"{self.type.value} carries no document; only content behind an S3 key does")
        _check(self.v == PROTOCOL_VERSION, f"unsupported message version {self.v!r}")
        _check(self.incarnation is None or is_valid_incarnation(self.incarnation), "bad incarnation")
        if self.type in BY_REFERENCE:
            _check(self.s3_key is not None, f"{self.type.value} carries its content by S3 key")
        if self.type in INLINE:
            _check(self.payload is not None, f"{self.type.value} needs an inline payload")
        if self.type in EVENT_TYPES or self.type is MessageType.SNAPSHOT:
            _check(self.seq >= 1, f"{self.type.value} needs a sequence number >= 1")

    @property
    def is_event(self) -> bool:
        return self.type in EVENT_TYPES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["type"] = self.type.value
        return {k: data[k] for k in _FIELDS if data[k] is not None}

    def to_json(self) -> str:
        return self._json

    @cached_property
    def _json(self) -> str:
        # Encoded once: the fan-out sends the same envelope (inline document included) to every queue.
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def with_url(self, url: str | None) -> Envelope:
        return replace(self, url=url)

    def with_document(self, document: dict[str, Any]) -> Envelope:
        """The same message carrying its document inline (and no URL: it need not be fetched)."""
        return replace(self, document=document, url=None)

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        _check(isinstance(data, dict), "a message must be a JSON object")
        unknown = set(data) - set(_FIELDS)
        _check(not unknown, f"unknown message fields: {sorted(unknown)}")
        for required in ("session_id", "seq", "type", "ts"):
            _check(required in data, f"message is missing {required!r}")
        try:
            kind = MessageType(data["type"])
        except ValueError:
            raise MessageError(f"unknown message type {data['type']!r}") from None
        return cls(
            session_id=data["session_id"],
            seq=data["seq"],
            type=kind,
            ts=data["ts"],
            s3_key=data.get("s3_key"),
            url=data.get("url"),
            payload=data.get("payload"),
            v=data.get("v", PROTOCOL_VERSION),
            document=data.get("document"),
            incarnation=data.get("incarnation"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise MessageError(f"message is not JSON: {exc}") from None
        return cls.from_dict(data)


def end_of_history(session_id: str, last_seq: int, ts: float, incarnation: str | None = None) -> Envelope:
    """The marker closing a history queue: everything up to ``last_seq`` came before it."""
    return Envelope(session_id=session_id, seq=last_seq, type=MessageType.END_OF_HISTORY, ts=ts,
                    incarnation=incarnation)


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise MessageError(reason)
