"""A browser without a screen: the page's DualQueueProcessor and reducer driven over HTTP in CPython.

Tests, the chaos run and the fan-out benchmark use it to stand in for many browsers at once. It
runs exactly the shared ``web_py`` logic the page runs in Pyodide; only the I/O differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from web_py import page_state
from web_py.messages import BY_REFERENCE, Envelope
from web_py.queue_processor import Apply, Decision, Drop, DualQueueProcessor, Gap, HistoryComplete

REPAIR_LIMIT = 500


class JoinFailed(RuntimeError):
    pass


class HeadlessBrowser:
    def __init__(self, base_url: str, session_id: str, *, http: httpx.Client | None = None) -> None:
        self.session_id = session_id
        self.http = http or httpx.Client(base_url=base_url, timeout=40)
        self._documents = httpx.Client(timeout=20)
        self._cache: dict[str, Any] = {}
        self.state = page_state.PageState()
        self.processor = DualQueueProcessor(session_id=session_id)
        self.client_id: str | None = None
        self.role: str | None = None
        # Every event seq applied, in order: the exactly-once, in-order check reads this.
        self.applied: list[int] = []

    # -- REST ----------------------------------------------------------------------------------

    def call(self, operation: str, **body: Any) -> Any:
        response = self.http.post(f"/api/{operation}", json={"session_id": self.session_id, **body})
        if response.status_code != 200:
            raise JoinFailed(f"{operation}: HTTP {response.status_code} {response.text}")
        return response.json()

    def join(self) -> dict[str, Any]:
        joined = self.call("webpage_join_session")
        self.client_id, self.role = joined["client_id"], joined["role"]
        # A (re)join sends a fresh history: read it first, dropping what is already applied.
        self.processor = DualQueueProcessor(self.processor.last_applied, session_id=self.session_id)
        return dict(joined)

    def heartbeat(self) -> dict[str, Any]:
        beat = self.call("webpage_send_heartbeat")
        self.role = beat["role"]
        return dict(beat)

    # -- the loop ------------------------------------------------------------------------------

    def step(self, wait_seconds: int = 1) -> int:
        """Poll the queue the processor wants once and process the batch; returns messages seen."""
        queue = self.processor.queue_to_poll()
        response = self.http.post("/api/webpage_poll_queue", json={
            "session_id": self.session_id, "queue": queue, "wait_seconds": wait_seconds, "max_messages": 10,
        })
        if response.status_code == 410:
            self.join()
            return 0
        if response.status_code != 200:
            raise JoinFailed(f"poll: HTTP {response.status_code} {response.text}")
        messages = response.json()["messages"]
        acks: list[str] = []
        for message in messages:
            envelope = Envelope.from_dict(message["body"])
            self._settle(self.processor.offer(queue, envelope, token=message["receipt_handle"]), acks)
            self._drain(acks)
        if acks:
            self.http.post("/api/webpage_delete_message", json={
                "session_id": self.session_id, "queue": queue, "receipt_handles": acks,
            })
        return len(messages)

    def run_until(self, done: Callable[[HeadlessBrowser], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.client_id}: not done after {timeout_s}s (last seq "
                                   f"{self.processor.last_applied}, phase {self.processor.phase})")
            self.step(wait_seconds=1)

    def catch_up(self, last_seq: int, timeout_s: float = 30.0) -> None:
        self.run_until(lambda b: b.processor.last_applied >= last_seq, timeout_s)

    # -- decisions -----------------------------------------------------------------------------

    def _drain(self, acks: list[str]) -> None:
        while (decision := self.processor.next_ready()) is not None:
            self._settle(decision, acks)
        for _ in range(100):
            gap = self.processor.open_gap()
            if gap is None:
                return
            self._repair(gap, acks)

    def _settle(self, decision: Decision, acks: list[str]) -> None:
        if isinstance(decision, Apply):
            envelope = decision.envelope
            document = self._document(envelope) if envelope.type in BY_REFERENCE else None
            self.state = page_state.apply(self.state, envelope, document)
            self.processor.applied(envelope)
            if envelope.is_event:
                self.applied.append(envelope.seq)
            if decision.token is not None:
                acks.append(decision.token)
        elif isinstance(decision, (Drop, HistoryComplete)):
            if decision.token is not None:
                acks.append(decision.token)
        elif isinstance(decision, Gap):
            self._repair(decision, acks)

    def _repair(self, gap: Gap, acks: list[str]) -> None:
        events = self.call("webpage_get_events", after_seq=gap.after_seq, limit=REPAIR_LIMIT)["events"]
        for data in events:
            envelope = Envelope.from_dict(data)
            if envelope.seq <= self.processor.last_applied:
                continue
            self._settle(self.processor.offer("repair", envelope), acks)
            while (decision := self.processor.next_ready()) is not None:
                self._settle(decision, acks)

    def _document(self, envelope: Envelope) -> Any:
        key = envelope.s3_key
        assert key is not None and envelope.url is not None
        if key not in self._cache:
            response = self._documents.get(envelope.url)
            response.raise_for_status()
            self._cache[key] = response.json()
        return self._cache[key]

    def close(self) -> None:
        self.http.close()
        self._documents.close()
