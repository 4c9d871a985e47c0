"""The page's I/O loop: join, long-poll both queues, fetch documents, heartbeat, reconnect.

Polling is direct by default: the page long-polls its own SQS queues with the presigned receives
the join answer carries (``web_py/direct_receive.py``), so no request waits on our server while
the page waits for news; heartbeat answers renew them. ``poll_mode="server"`` (the page URL's
``?poll=server``) long-polls through ``webpage_poll_queue`` instead, for networks that block SQS.
Acknowledgements ride on the heartbeat (``web_py/pending_acks.py``): the receipt handles of applied
messages wait for the next beat, which carries them all, so a page costs one short call per
heartbeat interval however many updates arrive. Only the history queue's handles go at once (its
one message group hands out the next batch only when the previous one is deleted), and a heartbeat
goes early when more handles wait than one call may carry. Live messages are received with a
visibility timeout longer than a few intervals (the server signs it into the presigned receive), so
nothing is handed out twice in steady state; after a reload or a crash, what comes back is dropped
as already applied.

Standard library only and transport-agnostic: every request goes through an injected ``Http``
(``pyfetch`` in the page, httpx in tests), storage through an injected ``Store``
(``sessionStorage`` in the page), time through injected ``sleep``/``clock``. The decisions about
order, duplicates and gaps belong to ``DualQueueProcessor``; the state change to
``page_state.apply``; this module only moves messages between them and the server.

Resume after a reload: the last applied state is saved in the store after every batch. On start the
page shows it at once and the processor starts from its ``last_seq``, so the history the server
sends again on join is dropped without a fetch up to that point — no second full replay. The saved
state names the session's incarnation: when the join answers another one (the id was re-created,
after expiry or an end), the saved state, the document cache and any message of the other
incarnation are discarded, whatever their sequence numbers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from web_py.direct_receive import DirectReceiver, received
from web_py.messages import BY_REFERENCE, Envelope, MessageError
from web_py.page_state import PageState, SequenceError, apply
from web_py.pending_acks import PendingAcks
from web_py.queue_processor import Apply, Decision, Drop, DualQueueProcessor, Gap, HistoryComplete
from web_py.render import Connection, View
from web_py.sqs_xml import SqsResponseError

log = logging.getLogger("web_py.session_manager")

STORE_VERSION = 1
HISTORY_WAIT_S = 5
LIVE_WAIT_S = 20
MAX_MESSAGES = 10
REPAIR_LIMIT = 500
DOCUMENT_CACHE_SIZE = 64
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 15.0
# When the session does not exist yet, the page waits for the AI to create it.
MISSING_SESSION_RETRY_S = 5.0
# A full session (409: its viewer cap, or this browser's tab cap) frees a place only when someone
# leaves: ask again about twice a minute, jittered so a crowd does not come back at once.
FULL_SESSION_RETRY_S = 30.0
# A history queue that stays empty this many polls lost its messages (e.g. a reload mid-history
# left them invisible): join again, which sends the history anew.
EMPTY_HISTORY_POLLS = 3
# Heartbeats do not report the session's last sequence; ask for the status every few beats so a
# lost final event (which no later event would reveal) is still caught.
STATUS_EVERY_HEARTBEATS = 3
POLL_MODES = ("direct", "server")
# Presigned receives refused this many times in a row although just renewed: back off (the server's
# clock or credentials are off; retrying at once would only repeat the refusal).
REFUSALS_BEFORE_BACKOFF = 2
# Told to join again this soon after a join, before the server ever took the identity it gave us
# (a cookie it cannot see, queues that vanish at once): join again, but through the back-off, so a
# page never creates more than a few participants a minute whatever the server answers. Once a call
# after the join succeeded, the identity worked and the removal is real (a restart, a sweep): one
# such quick rejoin per window goes at once.
REJOIN_BACKOFF_WITHIN_S = 30.0


class Http(Protocol):
    """The transport. Network failures raise ``TransportError``; HTTP errors return their status."""

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST JSON to our server (same origin, cookies included); returns (status, parsed JSON)."""
        ...

    async def get_json(self, url: str) -> tuple[int, Any]:
        """GET a JSON document by absolute (presigned) URL, without credentials."""
        ...

    async def get_text(self, url: str) -> tuple[int, str | None]:
        """GET by absolute (presigned) URL, without credentials, never cached: (status, body text).
        The page's long-polls of SQS (which answers in XML)."""
        ...


class Store(Protocol):
    def load(self, key: str) -> str | None: ...

    def save(self, key: str, value: str) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def load(self, key: str) -> str | None:
        return self.items.get(key)

    def save(self, key: str, value: str) -> None:
        self.items[key] = value


class TransportError(Exception):
    """The request did not reach the server or no answer came back."""


class ApiFailure(Exception):
    def __init__(self, operation: str, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else None
        super().__init__(f"{operation}: HTTP {status}: {message or body!r}")
        self.operation = operation
        self.status = status
        self.body = body

    @property
    def needs_join(self) -> bool:
        # 410: our queues are gone; 404 on a browser call: the server forgot us; 401: no/bad cookie.
        return self.status in (401, 404, 410)


class JoinAgain(Exception):
    """A heartbeat learned during a poll that the server no longer has us: the poll was abandoned."""


class DocumentError(Exception):
    """A document behind an S3 key could not be fetched or parsed."""


@dataclass(frozen=True)
class Joined:
    client_id: str
    role: str
    master_client_id: str | None
    resumed: bool
    last_seq: int
    heartbeat_interval_s: float
    heartbeat_timeout_s: float
    incarnation: str | None = None


@dataclass
class Metrics:
    polls: int = 0
    messages: int = 0
    documents_fetched: int = 0
    document_cache_hits: int = 0
    repairs: int = 0
    joins: int = 0
    reconnects: int = 0
    heartbeats: int = 0
    malformed: int = 0
    applied_from_history: int = 0
    applied_from_live: int = 0
    applied_from_repair: int = 0
    restored_seq: int = 0
    direct_polls: int = 0  # long-polls sent straight to SQS (the rest of ``polls`` went through us)
    renewals: int = 0  # answers that brought fresh presigned receives (join excluded)
    refused_receives: int = 0  # presigned receives SQS refused (expired, bad signature)
    inline_documents: int = 0  # documents that rode in the message (no fetch)
    ack_calls: int = 0  # heartbeats that carried receipt handles
    acks_sent: int = 0  # receipt handles those heartbeats carried
    other_incarnation: int = 0  # messages of another incarnation of the session id, dropped
    discarded_states: int = 0  # saved states of another incarnation, discarded on join


Listener = Callable[[PageState, View], None]
# Told of every envelope applied (events and snapshots) and where it came from: "history", "live"
# or "repair". An observer (the chaos run's ledger), never a way to change what is applied.
ApplyObserver = Callable[[Envelope, str], None]


def _seq_of(message: tuple[str, Any]) -> int:
    seq = message[1].get("seq") if isinstance(message[1], dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1


class SessionManager:
    def __init__(
        self,
        session_id: str,
        http: Http,
        *,
        store: Store | None = None,
        on_change: Listener | None = None,
        on_apply: ApplyObserver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        history_wait_s: int = HISTORY_WAIT_S,
        live_wait_s: int = LIVE_WAIT_S,
        poll_mode: str = "direct",
    ) -> None:
        if poll_mode not in POLL_MODES:
            raise ValueError(f"poll_mode must be one of {POLL_MODES}, not {poll_mode!r}")
        self.poll_mode = poll_mode
        self.session_id = session_id
        self.http = http
        self.store = store or MemoryStore()
        self.on_change = on_change
        self.on_apply = on_apply
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self.history_wait_s = history_wait_s
        self.live_wait_s = live_wait_s
        self.state = PageState()
        self.view = View()
        self.joined: Joined | None = None
        self.processor = DualQueueProcessor(0, session_id=session_id)
        self.metrics = Metrics()
        self.applied_seqs: list[int] = []  # every event seq applied, in order (tests: never twice)
        self._documents: OrderedDict[str, Any] = OrderedDict()
        self._acks = PendingAcks()
        self._needs_join = False
        self._stopped = False
        self._known_last_seq = 0
        self._empty_history_polls = 0
        self._heartbeat_interval_s = 5.0
        self.direct = DirectReceiver()
        self._last_beat = 0.0  # clock() of the last answer that counted as our heartbeat
        self._joined_at: float | None = None  # clock() of the last successful join
        self._identity_taken = False  # a call after that join succeeded: the server knows us
        self._quick_rejoin_at: float | None = None  # clock() of the last rejoin let through at once
        self._rejoin_paced = False  # this rejoin already waited (or was let through)
        self._rejoin_backoff = BACKOFF_START_S
        self._told_to_rejoin = asyncio.Event()  # set by a heartbeat answered "join again"
        self._refusals = 0
        # The incarnation our state belongs to (None: not known yet, or a session from before them).
        self.incarnation: str | None = None
        self.restore()

    # --- persistence -----------------------------------------------------------------------------

    @property
    def store_key(self) -> str:
        return f"pbfm:{self.session_id}"

    def restore(self) -> bool:
        """Show the state saved before a reload, if any; the processor then starts from it."""
        raw = self.store.load(self.store_key)
        if raw is None:
            return False
        try:
            data = json.loads(raw)
            if data.get("v") != STORE_VERSION:
                return False
            state = PageState.from_dict(data["state"])
            incarnation = data.get("incarnation")
            if incarnation is not None and not isinstance(incarnation, str):
                raise TypeError("incarnation must be a string")
        except (ValueError, KeyError, TypeError, AttributeError, MessageError) as exc:
            log.warning("ignoring saved state: %s", exc)
            return False
        self.state = state
        self.incarnation = incarnation
        self.view = replace(self.view, client_id=data.get("client_id"))
        self.metrics.restored_seq = state.last_seq
        return True

    def save(self) -> None:
        data = {"v": STORE_VERSION, "client_id": self.view.client_id, "incarnation": self.incarnation,
                "state": self.state.to_dict()}
        self.store.save(self.store_key, json.dumps(data, separators=(",", ":")))

    # --- view ------------------------------------------------------------------------------------

    def _set_view(self, **changes: Any) -> None:
        view = replace(self.view, **changes)
        if view != self.view:
            self.view = view
            self._notify()

    def _set_connection(self, connection: Connection) -> None:
        self._set_view(connection="ended" if self.state.ended else connection)

    def _notify(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.state, self.view)
            except Exception:
                # A rendering bug must not stop the session: the next change renders again.
                log.exception("on_change failed")

    # --- REST ------------------------------------------------------------------------------------

    async def call(self, operation: str, **body: Any) -> Any:
        status, data = await self.http.post(f"/api/{operation}", {"session_id": self.session_id, **body})
        if status != 200:
            raise ApiFailure(operation, status, data)
        if operation != "webpage_join_session":
            self._identity_taken = True
        return data

    async def connect(self) -> Joined:
        """Join (or rejoin) the session; a fresh processor then drains the new history queue."""
        data = await self.call("webpage_join_session")
        joined = Joined(
            client_id=data["client_id"],
            role=data["role"],
            master_client_id=data.get("master_client_id"),
            resumed=bool(data.get("resumed")),
            last_seq=int(data["last_seq"]),
            heartbeat_interval_s=float(data.get("heartbeat_interval_s", 5.0)),
            heartbeat_timeout_s=float(data.get("heartbeat_timeout_s", 15.0)),
            incarnation=data.get("incarnation"),
        )
        if joined.incarnation != self.incarnation:
            if self.state != PageState():
                # The session id was re-created: what we show belongs to an earlier life of it,
                # however its sequence numbers compare with the new log's.
                log.warning("saved state belongs to incarnation %s, the session is %s; starting fresh",
                            self.incarnation, joined.incarnation)
                self.metrics.discarded_states += 1
            self.state = PageState()
            self.applied_seqs.clear()
            self._documents.clear()
            self._known_last_seq = 0
            self.incarnation = joined.incarnation
        elif joined.last_seq < self.state.last_seq:
            # The server's log is shorter than what we show: a different incarnation of the
            # session (e.g. a restarted local stack). Our state would hide its events; start over.
            log.warning(
                "saved state at seq %s is ahead of the server (%s); starting fresh",
                self.state.last_seq,
                joined.last_seq,
            )
            self.state = PageState()
            self.applied_seqs.clear()
        self.joined = joined
        self.metrics.joins += 1
        self._heartbeat_interval_s = joined.heartbeat_interval_s
        self._last_beat = self._clock()  # a join counts as a heartbeat on the server
        self._joined_at = self._last_beat
        self._identity_taken = False
        self._rejoin_paced = False
        if not self.direct.update(data, self._clock()):
            self.direct.forget()
        self._refusals = 0
        self._needs_join = False
        self._empty_history_polls = 0
        self._acks.forget_live()
        self.processor = DualQueueProcessor(self.state.last_seq, session_id=self.session_id)
        self._set_view(client_id=joined.client_id, server_role=joined.role, notice=None)
        return joined

    # --- documents -------------------------------------------------------------------------------

    async def fetch_from_s3(self, envelope: Envelope) -> Any:
        """The parsed JSON behind ``envelope.s3_key``, by its presigned URL; cached by key."""
        key = envelope.s3_key
        assert key is not None
        if key in self._documents:
            self._documents.move_to_end(key)
            self.metrics.document_cache_hits += 1
            return self._documents[key]
        url = envelope.url
        status, document = (0, None) if url is None else await self.http.get_json(url)
        if status != 200 and envelope.is_event:
            # Presigned URLs expire; the event log hands out fresh ones.
            fresh = await self.call("webpage_get_events", after_seq=envelope.seq - 1, limit=1)
            match = [e for e in fresh.get("events", []) if e.get("seq") == envelope.seq]
            if match and match[0].get("url"):
                status, document = await self.http.get_json(match[0]["url"])
        if status != 200:
            raise DocumentError(f"{envelope.type.value} {key}: HTTP {status}")
        self.metrics.documents_fetched += 1
        self._documents[key] = document
        if len(self._documents) > DOCUMENT_CACHE_SIZE:
            self._documents.popitem(last=False)
        return document

    async def _document(self, envelope: Envelope) -> Any:
        if envelope.document is not None:
            self.metrics.inline_documents += 1
            return envelope.document
        return await self.fetch_from_s3(envelope)

    # --- messages --------------------------------------------------------------------------------

    async def handle_message(self, source: str, body: Any, receipt_handle: str | None = None) -> None:
        """Offer one message (a queue body or a repaired event) and settle what it unblocks."""
        token = None if receipt_handle is None else (source, receipt_handle)
        try:
            envelope = Envelope.from_dict(body)
        except MessageError as exc:
            # Never retry a malformed message forever; if it hid a real event, a Gap repairs it.
            self.metrics.malformed += 1
            log.warning("dropping malformed %s message: %s", source, exc)
            self._ack(token)
            return
        if not self._ours(envelope):
            self._ack(token)
            return
        decision: Decision | None = self.processor.offer(source, envelope, token)  # type: ignore[arg-type]
        await self._settle(decision)

    def _ours(self, envelope: Envelope) -> bool:
        """False for a message of another incarnation of the session id (counted, never applied)."""
        if envelope.incarnation is not None and envelope.incarnation != self.incarnation:
            self.metrics.other_incarnation += 1
            return False
        return True

    async def _settle(self, decision: Decision | None, *, repairing: bool = False) -> None:
        while decision is not None:
            if isinstance(decision, Apply):
                await self._apply(decision)
            elif isinstance(decision, (Drop, HistoryComplete)):
                self._ack(decision.token)
                if isinstance(decision, HistoryComplete):
                    self._set_connection("live")
            elif isinstance(decision, Gap) and not repairing:
                await self.repair(decision)
            decision = self.processor.next_ready()
        if not repairing:
            await self._close_gaps()

    async def _apply(self, decision: Apply) -> None:
        envelope = decision.envelope
        try:
            document = await self._document(envelope) if envelope.type in BY_REFERENCE else None
            state = apply(self.state, envelope, document)
        except (DocumentError, MessageError, SequenceError, TransportError, ApiFailure) as exc:
            # Not acked: the queue redelivers it, or a later message reveals the gap to repair.
            self.processor.abandon(envelope)
            log.warning("could not apply seq %s: %s", envelope.seq, exc)
            if isinstance(exc, (TransportError, ApiFailure)):
                raise
            return
        self.state = state
        self.processor.applied(envelope)
        if envelope.is_event:
            self.applied_seqs.append(envelope.seq)
            counter = f"applied_from_{decision.source}"
            setattr(self.metrics, counter, getattr(self.metrics, counter) + 1)
        if self.on_apply is not None:
            try:
                self.on_apply(envelope, decision.source)
            except Exception:
                log.exception("on_apply failed")
        self._ack(decision.token)

    async def repair(self, gap: Gap) -> None:
        """Fetch the missing events by REST and offer them; held messages then follow in order."""
        self.metrics.repairs += 1
        wanted = gap.before_seq - gap.after_seq - 1
        limit = max(1, min(REPAIR_LIMIT, wanted))
        data = await self.call("webpage_get_events", after_seq=gap.after_seq, limit=limit)
        self._known_last_seq = max(self._known_last_seq, int(data.get("last_seq", 0)))
        for body in data.get("events", []):
            try:
                envelope = Envelope.from_dict(body)
            except MessageError as exc:
                log.warning("repair returned a malformed event: %s", exc)
                continue
            if not self._ours(envelope):
                continue
            await self._settle(self.processor.offer("repair", envelope), repairing=True)

    async def _close_gaps(self) -> None:
        # A repair can fall short (limit, an event expired meanwhile): retry while it makes progress.
        while (gap := self.processor.open_gap()) is not None:
            before = self.processor.last_applied
            await self.repair(gap)
            decision = self.processor.next_ready()
            if decision is not None:
                await self._settle(decision, repairing=True)
            if self.processor.last_applied == before:
                break

    def _ack(self, token: Any) -> None:
        # Kept for the next heartbeat, which carries every handle gathered since the last one.
        if token is not None:
            queue, handle = token
            self._acks.add(queue, handle)

    async def _flush_acks(self, queue: str) -> None:
        """Acknowledge now what cannot wait for the next heartbeat: the history queue's handles while
        polling it (its one message group holds the next batch back until these are deleted), and
        more handles than one heartbeat may carry. Each call is a heartbeat: the next beat moves."""
        while (queue == "history" and self._acks.count("history")) or self._acks.full:
            await self.heartbeat_once()

    # --- polling ---------------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """One long-poll of the queue the processor is on, applied and saved (acknowledged with a heartbeat)."""
        queue = self.processor.queue_to_poll()
        wait = self.history_wait_s if queue == "history" else self.live_wait_s
        await self._flush_acks(queue)  # left over from a poll whose acknowledgement failed
        messages = await self._receive_unless_told_to_rejoin(queue, wait)
        self.metrics.polls += 1
        self.metrics.messages += len(messages)
        before = self.state.last_seq
        if queue == "live":
            # A message group per live message (so an unacknowledged one holds nothing back): SQS
            # may then hand a batch out of order. Sorted, it applies without a repair.
            messages = sorted(messages, key=_seq_of)
        for receipt_handle, body in messages:
            await self.handle_message(queue, body, receipt_handle)
        if not messages:
            await self._quiet(queue)
        else:
            # Show the new state first: the renderer runs in the next turn of the event loop.
            self._notify()
        if self.state.last_seq != before or not messages:
            self.save()
        # Acknowledged only after the state reflects the messages, and (live) with the next
        # heartbeat: a reload before it sees them again and drops them as already applied.
        await self._flush_acks(queue)
        self._set_connection("live" if self.processor.phase == "live" else "connecting")
        self._notify()
        return len(messages)

    async def _receive_unless_told_to_rejoin(self, queue: str, wait: int) -> list[tuple[str, Any]]:
        """``_receive``, abandoned if a heartbeat answers "join again" meanwhile: the queue it waits
        on is gone with us (a restart, a sweep), and a long poll would hold the rejoin up to 20 s.
        What an abandoned receive took comes back after the visibility timeout and is dropped if
        already applied."""
        self._told_to_rejoin.clear()
        if self._needs_join:
            raise JoinAgain()
        receive = asyncio.ensure_future(self._receive(queue, wait))
        woken = asyncio.ensure_future(self._told_to_rejoin.wait())
        try:
            await asyncio.wait({receive, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            if not receive.done():
                receive.cancel()
                await asyncio.gather(receive, return_exceptions=True)  # let it unwind
        if receive.cancelled():
            raise JoinAgain()
        return receive.result()

    async def _receive(self, queue: str, wait: int) -> list[tuple[str, Any]]:
        """One long-poll of ``queue``: straight from SQS when we hold its presigned receive."""
        if self.poll_mode == "direct" and self.direct.available:
            url = self.direct.url_for(queue, wait, self._clock())
            if url is None:
                await self.heartbeat_once()  # its answer renews the URLs
                url = self.direct.url_for(queue, wait, self._clock())
            if url is not None:
                return await self._receive_direct(url)
            log.warning("no presigned receive valid for a %s s wait; polling through the server", wait)
        data = await self.call("webpage_poll_queue", queue=queue, wait_seconds=wait, max_messages=MAX_MESSAGES)
        return [(m.get("receipt_handle"), m.get("body")) for m in data.get("messages", [])]

    async def _receive_direct(self, url: str) -> list[tuple[str, Any]]:
        self.metrics.direct_polls += 1
        status, text = await self.http.get_text(url)
        try:
            messages = received(status, text)
        except SqsResponseError as exc:
            if exc.queue_missing:
                raise ApiFailure("sqs_receive_message", 410, {"message": str(exc)}) from exc
            if not exc.needs_fresh_url:
                raise TransportError(f"SQS receive: {exc}") from exc
            self.metrics.refused_receives += 1
            self._refusals += 1
            log.info("presigned receive refused (%s); renewing", exc.code)
            if self._refusals >= REFUSALS_BEFORE_BACKOFF:
                raise TransportError(f"SQS refused fresh presigned receives: {exc}") from exc
            await self.heartbeat_once()
            return []
        self._refusals = 0
        return messages

    async def _quiet(self, queue: str) -> None:
        if queue == "history":
            self._empty_history_polls += 1
            if self._empty_history_polls >= EMPTY_HISTORY_POLLS:
                log.warning("history queue stayed empty; joining again")
                self._needs_join = True
            return
        # The live queue is quiet but the server may know of a later event we never got.
        gap = self.processor.behind(self._known_last_seq)
        if gap is not None:
            await self.repair(gap)
            await self._settle(self.processor.next_ready())

    async def heartbeat_once(self) -> None:
        """One heartbeat, carrying the receipt handles gathered since the last one (at most a call's worth)."""
        acks = self._acks.take()
        try:
            data = await self.call("webpage_send_heartbeat", **({"acks": acks} if acks else {}))
        except BaseException:
            self._acks.give_back(acks)  # the next beat carries them (a rejoin forgets the live ones)
            raise
        if acks:
            self.metrics.ack_calls += 1
            self.metrics.acks_sent += sum(len(handles) for handles in acks.values())
        await self._took_heartbeat(data)

    def parting_heartbeat(self) -> tuple[str, dict[str, Any]] | None:
        """The page is going away: the heartbeat (path, body) that acknowledges what it applied and
        saved since the last beat, for a request that outlives the page; None if nothing waits.
        Sync, because an unload handler cannot wait. The handles leave the pending set: if the page
        stays after all (back-forward cache), the server deleted them all the same."""
        if self.joined is None or self._needs_join or self.state.ended:
            return None
        acks = self._acks.take()
        if not acks:
            return None
        self.metrics.ack_calls += 1
        self.metrics.acks_sent += sum(len(handles) for handles in acks.values())
        return "/api/webpage_send_heartbeat", {"session_id": self.session_id, "acks": acks}

    async def _took_heartbeat(self, data: dict[str, Any]) -> None:
        """A heartbeat's answer: the beat's time, renewed receives, the session's last sequence, our role."""
        self._last_beat = self._clock()
        self.metrics.heartbeats += 1
        if self.direct.update(data, self._clock()):
            self.metrics.renewals += 1
        if "last_seq" in data:
            self._known_last_seq = max(self._known_last_seq, int(data["last_seq"]))
        elif self.metrics.heartbeats % STATUS_EVERY_HEARTBEATS == 0:
            status = await self.call("webpage_get_session_status")
            self._known_last_seq = max(self._known_last_seq, int(status.get("last_seq", 0)))
        self._set_view(server_role=data.get("role"))

    async def request_price_refresh(self) -> bool:
        """Master only; the new price arrives like any other event, through the queue."""
        self._set_view(refresh_pending=True)
        try:
            await self.call("webpage_request_price_refresh")
            self._set_view(refresh_pending=False, notice=None)
            return True
        except ApiFailure as exc:
            if exc.status == 429:
                await self._cool_down(exc)
                return False
            notice = "Only the master can refresh the price." if exc.status == 403 else str(exc)
            self._set_view(refresh_pending=False, notice=notice)
            return False
        except TransportError:
            self._set_view(refresh_pending=False, notice="Could not reach the server; try again.")
            return False

    async def _cool_down(self, refused: ApiFailure) -> None:
        """The server rate-limits refreshes: keep the button disabled, and say why, until it allows one."""
        details = refused.body.get("details") if isinstance(refused.body, dict) else None
        wait = details.get("retry_after_s") if isinstance(details, dict) else None
        seconds = float(wait) if isinstance(wait, int | float) and 0 < wait <= 300 else 5.0
        self._set_view(refresh_pending=False, refresh_cooling=True,
                       notice=f"The price was refreshed moments ago; you can refresh again in {seconds:g} s.")
        await self._sleep(seconds)
        self._set_view(refresh_cooling=False, notice=None)

    # --- loops -----------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopped = True

    @property
    def running(self) -> bool:
        return not self._stopped and not self.state.ended

    async def run(self) -> None:
        """Join and keep the page in sync until stopped or the session ends."""
        self._notify()
        heartbeat = asyncio.ensure_future(self.heartbeat_loop())
        try:
            await self.poll_loop()
        finally:
            heartbeat.cancel()
            if self.state.ended:
                self._set_connection("ended")

    async def poll_loop(self) -> None:
        backoff = BACKOFF_START_S
        while self.running:
            try:
                if self.joined is None or self._needs_join:
                    await self._pace_rejoin()
                    await self.connect()
                await self.poll_once()
                backoff = BACKOFF_START_S
            except ApiFailure as exc:
                if exc.operation == "webpage_join_session":
                    if exc.status == 404:
                        notice = "This session has not been started yet; waiting…"
                        self._set_view(connection="connecting", notice=notice)
                        await self._sleep(MISSING_SESSION_RETRY_S)
                        continue
                    if exc.status == 410 and await self._session_has_ended():
                        await self._finish_ended_session()
                        return
                    if exc.status == 409:
                        message = exc.body.get("message") if isinstance(exc.body, dict) else None
                        self._set_view(connection="connecting", notice=message or "This session is full; waiting…")
                        await self._sleep(FULL_SESSION_RETRY_S * (0.5 + self._jitter()))
                        continue
                    # Any other refusal of a join: retry, but never in a tight loop.
                    backoff = await self._back_off(backoff, exc)
                    continue
                if exc.needs_join:
                    log.info("rejoining: %s", exc)
                    self._needs_join = True
                    self.metrics.reconnects += 1
                    self._set_connection("reconnecting")
                    continue
                backoff = await self._back_off(backoff, exc)
            except JoinAgain:
                log.info("rejoining: a heartbeat was told the server no longer has us")
                self.metrics.reconnects += 1
                self._set_connection("reconnecting")
            except (TransportError, DocumentError) as exc:
                backoff = await self._back_off(backoff, exc)
        await self._acknowledge_on_stop()

    async def _pace_rejoin(self) -> None:
        """Before a rejoin (told by a poll, a heartbeat or an empty history): wait, once per rejoin,
        if it comes soon after the last join, unless the server had taken that join's identity and
        no other quick rejoin went at once in the window (see REJOIN_BACKOFF_WITHIN_S). The wait
        doubles with each paced rejoin and starts again after a join that lasted the window."""
        if self._joined_at is None or self._rejoin_paced:
            return
        self._rejoin_paced = True
        now = self._clock()
        if now - self._joined_at >= REJOIN_BACKOFF_WITHIN_S:
            self._rejoin_backoff = BACKOFF_START_S
            return
        if self._identity_taken and (self._quick_rejoin_at is None
                                     or now - self._quick_rejoin_at >= REJOIN_BACKOFF_WITHIN_S):
            self._quick_rejoin_at = now
            return
        delay, self._rejoin_backoff = self._rejoin_backoff, min(self._rejoin_backoff * 2, BACKOFF_MAX_S)
        log.warning("told to join again %.0f s after joining; joining again in ~%.1f s",
                    now - self._joined_at, delay)
        self._set_connection("reconnecting")
        await self._sleep(delay * (0.5 + self._jitter()))

    async def _acknowledge_on_stop(self) -> None:
        """Stopped, not ended (an ended session's queues are gone): send every handle still pending,
        so those messages are not handed out again when their visibility timeout passes."""
        if not self._stopped or self.state.ended or self.joined is None:
            return
        while self._acks.count():
            try:
                await self.heartbeat_once()
            except (ApiFailure, TransportError) as exc:
                log.info("could not acknowledge on stop (the messages come back and are dropped): %s", exc)
                return

    async def _session_has_ended(self) -> bool:
        """A join's 410 means "ended" — or that our queue vanished while joining (a sweep or a
        restart raced it): only the session's status tells, and only "ended" stops the page."""
        try:
            status = await self.call("webpage_get_session_status")
        except (ApiFailure, TransportError) as exc:
            log.warning("could not read the session's status after a join's 410: %s", exc)
            return False
        return bool(status.get("status") == "ended")

    async def _finish_ended_session(self) -> None:
        """The session ended, and its queues went with it, possibly before SESSION_ENDED was read:
        take the missing tail (that event included) from the event log, which outlives the end."""
        try:
            data = await self.call("webpage_get_events", after_seq=self.state.last_seq, limit=REPAIR_LIMIT)
            for body in data.get("events", []):
                envelope = Envelope.from_dict(body)
                if self._ours(envelope):
                    await self._settle(self.processor.offer("repair", envelope), repairing=True)
        except (ApiFailure, TransportError, DocumentError, MessageError) as exc:
            log.warning("could not read the end of the session: %s", exc)
        if not self.state.ended:
            self._set_view(notice="This session has ended.")
        self._stopped = True
        self.save()
        self._set_connection("ended")
        self._notify()

    async def _back_off(self, backoff: float, exc: Exception) -> float:
        log.warning("connection problem, retrying in ~%.1f s: %s", backoff, exc)
        self.metrics.reconnects += 1
        self._set_connection("reconnecting")
        await self._nap(backoff * (0.5 + self._jitter()))
        return min(backoff * 2, BACKOFF_MAX_S)

    async def _nap(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a heartbeat learns meanwhile that we must join again (the
        server is back, without us): the rejoin need not wait out a back-off grown in the outage."""
        self._told_to_rejoin.clear()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._told_to_rejoin.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()

    async def heartbeat_loop(self) -> None:
        while self.running:
            if self.joined is None or self._needs_join:
                await self._sleep(self._heartbeat_interval_s)
                continue
            # Due an interval after the last beat: an acknowledgement that doubled as one moves it.
            wait = self._last_beat + self._heartbeat_interval_s - self._clock()
            if wait > self._heartbeat_interval_s * 0.05:
                await self._sleep(wait)
                continue
            try:
                await self.heartbeat_once()
                continue
            except ApiFailure as exc:
                if exc.needs_join:
                    self._needs_join = True
                    self._told_to_rejoin.set()
            except TransportError:
                # The poll loop notices the same outage and shows it; nothing more to do here.
                pass
            await self._sleep(self._heartbeat_interval_s)
