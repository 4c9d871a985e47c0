"""An in-memory stand-in for the server's REST API, for driving the shipped ``SessionManager`` in unit tests.

``ScriptedServer`` is an ``Http``: it answers the operations the page calls (join, poll, delete,
heartbeat, status, get_events) from an event log and two scripted queues, and serves the documents
behind the events' URLs. It plays the server, not the client: every decision about order,
duplicates, gaps, repairs and acknowledgements is the page's own loop's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from web_py.messages import Envelope, MessageType
from web_py.pending_acks import MAX_ACKS_PER_CALL

EventLog = Callable[[int], tuple[Envelope, Any]]  # seq -> (event, the document behind its S3 key)
CLIENT_ID = "scriptedpage"
MAX_MESSAGES = 10


class ScriptedServer:
    """Serves ``history`` and ``live`` (envelopes, or raw dicts for malformed bodies) in order.

    ``batch``: how many messages the next poll returns (at most what was asked); ``repair_cap``:
    the most events one ``webpage_get_events`` returns; ``expired``: seqs whose queue copies carry a
    presigned URL that no longer works (the log hands out fresh ones; snapshots are not in the log,
    and a message the page leaves unacknowledged is never delivered again here, unlike on SQS);
    ``snapshot_document``: the state document behind a SNAPSHOT at a seq. ``direct``: the join and
    heartbeat answers carry presigned receives (``https://sqs.test/<queue>``), which ``get_text`` answers in
    SQS's XML, refusing a receive as expired when ``refuse()`` says so (the page must renew).
    """

    def __init__(self, session_id: str, log: EventLog, last_seq: int, *, history: list[Envelope | dict[str, Any]],
                 live: list[Envelope | dict[str, Any]], snapshot_document: Callable[[int], Any],
                 batch: Callable[[], int] = lambda: MAX_MESSAGES, repair_cap: int = 500,
                 expired: frozenset[int] = frozenset(), direct: bool = False,
                 refuse: Callable[[], bool] = lambda: False) -> None:
        self.direct = direct
        self.refuse = refuse
        self.refused = 0
        self.session_id = session_id
        self.log = log
        self.last_seq = last_seq
        self.queues: dict[str, list[Envelope | dict[str, Any]]] = {"history": list(history), "live": list(live)}
        self.snapshot_document = snapshot_document
        self.batch = batch
        self.repair_cap = repair_cap
        self.expired = expired
        self.delivered: list[str] = []  # receipt handles handed out
        self.deleted: list[str] = []  # receipt handles the page acknowledged
        self.malformed_delivered = 0
        self.requests: Counter[str] = Counter()
        self.joins = 0
        self._handles = 0
        self._wire_cache: dict[tuple[MessageType, int, bool], dict[str, Any]] = {}

    # --- Http ------------------------------------------------------------------------------------

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        await asyncio.sleep(0)  # a request is a suspension point, as on the network
        operation = path.removeprefix("/api/")
        self.requests[operation] += 1
        if body.get("session_id") != self.session_id:
            return 404, {"error": "not_found", "message": "no such session"}
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            return 404, {"error": "not_found", "message": f"no operation {operation}"}
        return 200, handler(body)

    async def get_json(self, url: str) -> tuple[int, Any]:
        await asyncio.sleep(0)
        self.requests["GET"] += 1
        key, _, flag = url.removeprefix("mem://").partition("?")
        if flag == "expired":
            return 403, None
        if key.startswith(f"sessions/{self.session_id}/snapshots/"):
            return 200, self.snapshot_document(int(key.rsplit("/", 1)[1].removesuffix(".json")))
        seq = int(key.rsplit("/", 1)[1].removesuffix(".json"))
        return 200, self.log(seq)[1]

    async def get_text(self, url: str) -> tuple[int, str | None]:
        await asyncio.sleep(0)
        self.requests["SQS"] += 1
        queue = url.removeprefix("https://sqs.test/")
        assert self.direct and queue in self.queues, url
        if self.refuse():
            self.refused += 1
            return 403, ("<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
                         "<Message>Signature expired</Message></Error></ErrorResponse>")
        parts = []
        for message in self._take(queue, MAX_MESSAGES):
            body = json.dumps(message["body"])
            parts.append(f"<Message><MessageId>m</MessageId><ReceiptHandle>{escape(message['receipt_handle'])}"
                         f"</ReceiptHandle><MD5OfBody>{hashlib.md5(body.encode()).hexdigest()}</MD5OfBody>"
                         f"<Body>{escape(body)}</Body></Message>")
        return 200, (f'<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">'
                     f"<ReceiveMessageResult>{''.join(parts)}</ReceiveMessageResult></ReceiveMessageResponse>")

    def _receive_urls(self) -> dict[str, Any]:
        if not self.direct:
            return {}
        return {"receive_urls": {q: {"url": f"https://sqs.test/{q}", "expires_at": 0, "expires_in_s": 900}
                                 for q in ("history", "live")}}

    # --- operations ------------------------------------------------------------------------------

    def _webpage_join_session(self, body: dict[str, Any]) -> dict[str, Any]:
        self.joins += 1
        if self.joins > 1:
            # What the server does on a join: the history is sent again (here: the whole log).
            self.queues["history"] = [self.log(seq)[0] for seq in range(1, self.last_seq + 1)]
            self.queues["history"].append(Envelope(self.session_id, self.last_seq, MessageType.END_OF_HISTORY, 1.0))
        return {"session_id": self.session_id, "client_id": CLIENT_ID, "role": "observer",
                "master_client_id": None, "resumed": self.joins > 1, "last_seq": self.last_seq,
                "heartbeat_interval_s": 1.0, "heartbeat_timeout_s": 3.0, **self._receive_urls()}

    def _webpage_poll_queue(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"messages": self._take(body["queue"], body.get("max_messages", MAX_MESSAGES))}

    def _take(self, name: str, max_messages: int) -> list[dict[str, Any]]:
        queue = self.queues[name]
        count = min(max_messages, max(1, self.batch()), len(queue))
        messages = []
        for item in queue[:count]:
            self._handles += 1
            handle = f"{name[0]}{self._handles}"
            self.delivered.append(handle)
            if isinstance(item, Envelope):
                wire = self._wire(item, expired=item.is_event and item.seq in self.expired)
            else:
                wire = item
                self.malformed_delivered += 1
            messages.append({"receipt_handle": handle, "body": wire})
        del queue[:count]
        return messages

    def _webpage_delete_message(self, body: dict[str, Any]) -> dict[str, Any]:
        handles = body["receipt_handles"]
        assert 1 <= len(handles) <= MAX_MESSAGES, handles
        assert all(h[0] == body["queue"][0] for h in handles), (body["queue"], handles)
        self.deleted.extend(handles)
        if body.get("heartbeat"):
            self.requests["heartbeat_in_ack"] += 1
            return {"deleted": len(handles), "heartbeat": self._webpage_send_heartbeat(body)}
        return {"deleted": len(handles)}

    def _webpage_send_heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        acks = body.get("acks") or {}
        if acks:
            assert set(acks) <= {"history", "live"}, acks
            assert 1 <= sum(map(len, acks.values())) <= MAX_ACKS_PER_CALL, acks
            for queue, handles in acks.items():
                assert len(set(handles)) == len(handles) and all(h[0] == queue[0] for h in handles), (queue, handles)
                self.deleted.extend(handles)
            self.requests["heartbeat_with_acks"] += 1
        return {"role": "observer", "master_client_id": None, "server_time": 0.0,
                "acknowledged": sum(map(len, acks.values())), **self._receive_urls()}

    def _webpage_get_session_status(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"session_id": self.session_id, "status": "active", "last_seq": self.last_seq,
                "master_client_id": None, "participants": [], "created_at": 0.0}

    def _webpage_get_events(self, body: dict[str, Any]) -> dict[str, Any]:
        after, limit = int(body["after_seq"]), int(body.get("limit", 100))
        upto = min(self.last_seq, after + min(limit, self.repair_cap))
        events = [self._wire(self.log(seq)[0], expired=False) for seq in range(after + 1, upto + 1)]
        return {"events": events, "last_seq": self.last_seq}

    # --- helpers ---------------------------------------------------------------------------------

    def _wire(self, envelope: Envelope, *, expired: bool) -> dict[str, Any]:
        key = (envelope.type, envelope.seq, expired)
        if key not in self._wire_cache:  # to_dict is the slow part of a poll here
            data = envelope.to_dict()
            if envelope.s3_key is not None:
                data["url"] = f"mem://{envelope.s3_key}" + ("?expired" if expired else "")
            self._wire_cache[key] = data
        return dict(self._wire_cache[key])

    @property
    def drained(self) -> bool:
        return not self.queues["live"]
