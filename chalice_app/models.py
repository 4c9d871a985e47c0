"""Pydantic types of the public operations: they are the JSON schemas of REST, MCP and OpenAPI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from chalice_app.content_schema import VOCABULARY
from chalice_app.roles import Role
from web_py.content import MAX_SHORT_TEXT, Layout, PriceQuote
from web_py.messages import CLIENT_ID_PATTERN, SESSION_ID_PATTERN

SessionId = Annotated[
    str,
    Field(pattern=SESSION_ID_PATTERN.pattern, description="Session id: 1-24 of A-Z a-z 0-9 _ -", examples=["demo"]),
]
ClientId = Annotated[
    str, Field(pattern=CLIENT_ID_PATTERN.pattern, description="Browser id (12 of a-z 0-9), from participants")
]
QueueKind = Annotated[Literal["live", "history"], Field(description="Which of the browser's two queues")]
ReceiptHandle = Annotated[str, Field(min_length=1, max_length=2048)]
ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT)]


# -- AI content: defined once in web_py/content.py, derived here (chalice_app/content_schema.py) ----

LayoutContent = Annotated[
    Layout, VOCABULARY,
    Field(description="What the page shows below its header: blocks top to bottom, all text shown as plain text"),
]
PriceQuoteDocument = Annotated[PriceQuote, VOCABULARY, Field(description="The quote now shown on every page")]


# -- results ---------------------------------------------------------------------------------

class SessionCreated(BaseModel):
    session_id: str
    created: bool = Field(description="False when the session already existed (creating is idempotent)")
    page_path: str
    last_seq: int
    status: str


class ParticipantInfo(BaseModel):
    client_id: str
    role: Role
    joined_at: float
    last_heartbeat_age_s: float


class SessionStatus(BaseModel):
    session_id: str
    status: str
    title: str | None
    last_seq: int
    master_client_id: str | None
    participants: list[ParticipantInfo]
    created_at: float


class Participants(BaseModel):
    session_id: str
    master_client_id: str | None
    participants: list[ParticipantInfo]


class Joined(BaseModel):
    session_id: str
    incarnation: str | None = Field(
        default=None, description="This incarnation of the session id: made anew each time the id is (re)created; "
        "state saved from another incarnation must be discarded")
    client_id: str
    role: Role
    master_client_id: str | None
    resumed: bool = Field(description="True when a returning browser kept its queues")
    last_seq: int = Field(description="Last sequence covered by the history sent to this browser")
    heartbeat_interval_s: float
    heartbeat_timeout_s: float


class BrowserQueuesInfo(BaseModel):
    session_id: str
    client_id: str
    live_queue: str
    history_queue: str
    recreated: bool
    last_seq: int


class QueueMessage(BaseModel):
    receipt_handle: str
    body: dict[str, object]


class Polled(BaseModel):
    messages: list[QueueMessage]


class Deleted(BaseModel):
    deleted: int


class Heartbeat(BaseModel):
    role: Role
    master_client_id: str | None
    server_time: float
    last_seq: int = Field(description="The session's last event; a page behind it repairs the gap")


class Events(BaseModel):
    events: list[dict[str, object]]
    last_seq: int


class DeliveryReport(BaseModel):
    session_id: str
    seq: int = Field(description="Sequence number given to the event")
    delivered: int = Field(description="Browsers whose live queue accepted it")
    failed: int = Field(description="Browsers whose queue failed; they were marked gone")
    s3_key: str | None = None


class PriceUpdate(DeliveryReport):
    price: PriceQuoteDocument


class StoredDocument(BaseModel):
    s3_key: str
    url: str = Field(description="Presigned GET URL")
    bytes: int


class GeneratedKey(BaseModel):
    s3_key: str


class ControlTransferred(BaseModel):
    session_id: str
    master_client_id: str
    previous_master_client_id: str | None


class SessionEnded(BaseModel):
    session_id: str
    seq: int
    archive_key: str
    browsers_removed: int
