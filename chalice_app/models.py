"""Pydantic types of the public operations: they are the JSON schemas of REST, MCP and OpenAPI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalice_app.content_schema import VOCABULARY
from chalice_app.roles import Role
from web_py.content import MAX_SHORT_TEXT, Layout, PriceQuote
from web_py.messages import CLIENT_ID_PATTERN, SESSION_ID_PATTERN
from web_py.pending_acks import MAX_ACKS_PER_CALL

SessionId = Annotated[
    str,
    Field(pattern=SESSION_ID_PATTERN.pattern, description="Session id: 1-24 of A-Z a-z 0-9 _ -", examples=["demo"]),
]
ClientId = Annotated[
    str, Field(pattern=CLIENT_ID_PATTERN.pattern, description="Browser id (12 of a-z 0-9), from participants")
]
QueueKind = Annotated[Literal["live", "history"], Field(description="Which of the browser's two queues")]
ReceiptHandle = Annotated[str, Field(min_length=1, max_length=2048, description="A receipt handle from a poll")]
ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT)]
Title = Annotated[ShortText, Field(description="Page title, plain text")]
EndReason = Annotated[ShortText, Field(description="Why the session ends; every page shows it")]
LayoutKey = Annotated[str, Field(
    pattern=r"^layouts/[A-Za-z0-9_-]{1,24}/[A-Za-z0-9_.-]{1,80}\.json$", max_length=160,
    description="The s3_key a layout was stored under (webpage_store_layout_data or webpage_send_to_browsers)",
)]


# -- AI content: defined once in web_py/content.py, derived here (chalice_app/content_schema.py) ----

LayoutContent = Annotated[
    Layout, VOCABULARY,
    Field(description="What the page shows below its header: blocks top to bottom, all text shown as plain text"),
]
PriceQuoteDocument = Annotated[PriceQuote, VOCABULARY, Field(description="The quote now shown on every page")]


# -- results ---------------------------------------------------------------------------------
# Every field is described: the descriptions are what a model reads in each tool's outputSchema.


class SessionCreated(BaseModel):
    session_id: str = Field(description="The session id")
    created: bool = Field(description="False when the session already existed and is live (creating is idempotent)")
    page_url: str = Field(description="Absolute URL of the session page; give it to the user to open in a browser")
    page_path: str = Field(description="The page's path on this server (page_url without the origin)")
    last_seq: int = Field(description="Sequence number of the session's latest event")
    status: str = Field(description='"active", or "ended" once webpage_end_session ran')


class ParticipantInfo(BaseModel):
    client_id: str = Field(description="The browser's id (one per browser tab)")
    role: Role = Field(description='"master" (may act) or "observer" (watches)')
    joined_at: float = Field(description="When the browser joined, epoch seconds")
    last_heartbeat_age_s: float = Field(description="Seconds since the browser's last heartbeat")
    in_chat: bool = Field(False, description="True for the session view inside an AI chat (an MCP App); it "
                          "becomes master only by webpage_transfer_control_to_observer")


class SessionStatus(BaseModel):
    session_id: str = Field(description="The session id")
    status: str = Field(description='"active", or "ended" once webpage_end_session ran')
    title: str | None = Field(description="The session's title, or null")
    page_url: str = Field(description="Absolute URL of the session page; give it to the user to open in a browser")
    last_seq: int = Field(description="Sequence number of the session's latest event")
    master_client_id: str | None = Field(description="The master browser (the one that may act), or null")
    participants: list[ParticipantInfo] = Field(description="The browsers watching now, longest-connected first")
    created_at: float = Field(description="When the session was created, epoch seconds")


class Participants(BaseModel):
    session_id: str = Field(description="The session id")
    master_client_id: str | None = Field(description="The master browser (the one that may act), or null")
    participants: list[ParticipantInfo] = Field(description="The browsers watching now, longest-connected first")


class ReceiveUrl(BaseModel):
    url: str = Field(description="Presigned SQS ReceiveMessage GET for this browser's own queue (no cookie)")
    expires_at: int = Field(description="Epoch seconds from which SQS refuses the URL")
    expires_in_s: int = Field(description="Seconds the URL is valid from this answer on (no clock sync needed)")


class ReceiveUrls(BaseModel):
    live: ReceiveUrl
    history: ReceiveUrl


class Joined(BaseModel):
    session_id: str = Field(description="The session id")
    incarnation: str | None = Field(
        default=None, description="This incarnation of the session id: made anew each time the id is (re)created; "
        "state saved from another incarnation must be discarded")
    client_id: str = Field(description="This browser tab's id in the session")
    role: Role = Field(description='"master" or "observer"')
    master_client_id: str | None = Field(description="The master browser (the one that may act), or null")
    resumed: bool = Field(description="True when a returning browser kept its queues")
    last_seq: int = Field(description="Last sequence covered by the history sent to this browser")
    heartbeat_interval_s: float = Field(description="Send a heartbeat this often, in seconds")
    heartbeat_timeout_s: float = Field(description="A master silent this many seconds is replaced")
    receive_urls: ReceiveUrls | None = Field(
        default=None, description="Long-poll these straight from SQS; heartbeat answers renew them")


class BrowserQueuesInfo(BaseModel):
    session_id: str = Field(description="The session id")
    client_id: str = Field(description="The browser that was repaired")
    live_queue: str = Field(description="Name of the queue that carries new events to this browser")
    history_queue: str = Field(description="Name of the queue that carried the session's history to it")
    recreated: bool = Field(description="True when its queues were lost and made again")
    last_seq: int = Field(description="Last sequence in the history sent to it again")


class QueueMessage(BaseModel):
    receipt_handle: str = Field(description="Acknowledge it once applied (webpage_send_heartbeat's `acks`)")
    body: dict[str, object] = Field(description="The message: one event envelope")


class Polled(BaseModel):
    messages: list[QueueMessage] = Field(description="Up to max_messages messages, in order")


AckedHandles = Annotated[list[ReceiptHandle], Field(
    max_length=MAX_ACKS_PER_CALL, json_schema_extra={"uniqueItems": True},
    description="Receipt handles of applied messages from this queue")]


class Acknowledgements(BaseModel):
    """Receipt handles of messages this browser has applied, by queue: the heartbeat deletes them."""

    model_config = ConfigDict(extra="forbid")
    live: AckedHandles = []
    history: AckedHandles = []

    @model_validator(mode="after")
    def _one_call_s_worth(self) -> Acknowledgements:
        if len(self.live) + len(self.history) > MAX_ACKS_PER_CALL:
            raise ValueError(f"at most {MAX_ACKS_PER_CALL} receipt handles per call (live and history together)")
        for handles in (self.live, self.history):
            # SQS refuses a whole batch that names one receipt twice: the caller's mistake, refused here.
            if len(set(handles)) != len(handles):
                raise ValueError("each receipt handle may appear only once")
        return self


class Heartbeat(BaseModel):
    role: Role = Field(description="This browser's role now")
    master_client_id: str | None = Field(description="The master browser (the one that may act), or null")
    server_time: float = Field(description="The server's clock, epoch seconds")
    last_seq: int = Field(description="The session's last event; a page behind it repairs the gap")
    receive_urls: ReceiveUrls | None = Field(default=None, description="Fresh presigned receives (renewals)")
    acknowledged: int = Field(default=0, description="How many of the messages named in `acks` were deleted "
                              "(a handle whose visibility timeout passed deletes nothing: the message comes back)")


class Deleted(BaseModel):
    deleted: int = Field(description="How many messages were deleted")
    heartbeat: Heartbeat | None = Field(default=None, description="When asked for: the acknowledgement "
                                        "also counted as this browser's heartbeat")


class Events(BaseModel):
    events: list[dict[str, object]] = Field(description="Event envelopes in sequence order")
    last_seq: int = Field(description="Sequence number of the session's latest event")


class DeliveryReport(BaseModel):
    session_id: str = Field(description="The session id")
    seq: int = Field(description="Sequence number given to the event")
    delivered: int = Field(description="Browsers whose live queue accepted it")
    failed: int = Field(description="Browsers whose queue failed; they were marked gone")
    s3_key: str | None = Field(default=None, description="Where the event's document is stored, or null")


class PriceUpdate(DeliveryReport):
    price: PriceQuoteDocument


class HashQuote(BaseModel):
    price: PriceQuoteDocument = Field(description="The HASH-USD quote; nothing was shown on any page")


class StoredDocument(BaseModel):
    s3_key: str = Field(description="The document's key; a stored layout is shown with webpage_show_stored_layout")
    url: str = Field(description="Presigned GET URL of the document (expires after a few hours)")
    bytes: int = Field(description="Size of the stored document in bytes")


class GeneratedKey(BaseModel):
    s3_key: str = Field(description="A fresh key, never handed out before")


class ControlTransferred(BaseModel):
    session_id: str = Field(description="The session id")
    master_client_id: str = Field(description="The new master browser")
    previous_master_client_id: str | None = Field(description="The master before the transfer, or null")


class SessionEnded(BaseModel):
    session_id: str = Field(description="The session id")
    seq: int = Field(description="Sequence number of the SESSION_ENDED event")
    archive_key: str = Field(description="Where the session's event log was archived in S3")
    browsers_removed: int = Field(description="Browsers whose queues were deleted")


class PricePoint(BaseModel):
    seq: int = Field(description="The PRICE_UPDATE event that showed it")
    price: str = Field(description="The price shown, USD as a decimal string")


class ParticipantView(BaseModel):
    client_id: str = Field(description="The browser's id")
    role: Role = Field(description='"master" or "observer"')
    joined_at: float = Field(description="When it joined, epoch seconds")
    in_chat: bool = Field(False, description="True for the session view inside an AI chat (an MCP App); it "
                          "becomes master only by webpage_transfer_control_to_observer")


class PageView(BaseModel):
    """Exactly what every browser of the session shows now (the page's own reducer over the log)."""

    session_id: str = Field(description="The session id")
    page_url: str = Field(description="Absolute URL of the session page; give it to the user to open in a browser")
    title: str | None = Field(description="The session's title, or null")
    status: str = Field(description='"active", or "ended" once webpage_end_session ran')
    last_seq: int = Field(description="The last event the page state includes")
    price: PriceQuoteDocument | None = Field(description="The price card's quote, or null before the first")
    recent_prices: list[PricePoint] = Field(description="The last prices shown (the price card's chart), oldest first")
    layout: LayoutContent
    master_client_id: str | None = Field(description="The master browser (the one that may act), or null")
    participants: list[ParticipantView] = Field(description="The browsers as the page lists them")
    ended: bool = Field(description="True once the session ended (pages show the reason)")
    end_reason: str | None = Field(description="Why the session ended, or null")


class SessionSummary(BaseModel):
    session_id: str = Field(description="The session id")
    title: str | None = Field(description="The session's title, or null")
    page_url: str = Field(description="Absolute URL of the session page; give it to the user to open in a browser")
    created_at: float = Field(description="When it was created, epoch seconds")
    expires_at: int = Field(description="When it expires unless ended first, epoch seconds")
    last_seq: int = Field(description="Sequence number of the session's latest event")
    browsers: int = Field(description="How many browsers receive its events now")


class SessionList(BaseModel):
    sessions: list[SessionSummary] = Field(description="Live sessions, newest first")
    limit: int = Field(description="The most this call returns; older sessions are left out")
