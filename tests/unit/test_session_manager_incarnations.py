"""The page's loop and a re-created session id: nothing of another incarnation is shown or applied.

The shipped ``SessionManager`` over a scripted server (no network): a saved state of an earlier
incarnation is discarded on join even though the new log has reached the same seq, and messages of
another incarnation — on the live queue or in a repair — are acknowledged and dropped, never applied.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from web_py.messages import Envelope, MessageType, end_of_history
from web_py.page_state import PageState, apply
from web_py.session_manager import STORE_VERSION, MemoryStore, SessionManager

SID = "s1"
OLD, NEW = "0a0a0a0a", "1b1b1b1b"
ME = "aaaaaaaaaaaa"


def role_change(seq: int, incarnation: str | None, master: str) -> Envelope:
    return Envelope(SID, seq, MessageType.ROLE_CHANGE, 1.0, incarnation=incarnation, payload={
        "master_client_id": master, "previous_master_client_id": None, "reason": "transfer"})


class Server:
    """Join, then the queues' scripted contents; acknowledgements and repairs recorded."""

    def __init__(self, history: list[Envelope], live: list[Envelope], repair: list[Envelope]) -> None:
        self.queues = {"history": [e.to_dict() for e in history], "live": [e.to_dict() for e in live]}
        self.repair = repair
        self.acked: list[str] = []
        self.joins = 0
        self.manager: SessionManager | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        operation = path.rsplit("/", 1)[1]
        if operation == "webpage_join_session":
            self.joins += 1
            assert self.joins == 1, "joined again: the page got stuck"
            return 200, {"client_id": ME, "role": "master", "master_client_id": ME, "resumed": False,
                         "last_seq": 5, "heartbeat_interval_s": 60.0, "heartbeat_timeout_s": 120.0,
                         "incarnation": NEW}
        if operation == "webpage_poll_queue":
            queue = self.queues[body["queue"]]
            batch, queue[:] = queue[:10], queue[10:]
            if not batch and body["queue"] == "live":
                assert self.manager is not None
                self.manager.stop()
            return 200, {"messages": [{"receipt_handle": f"{body['queue']}-{m['seq']}-{m.get('incarnation')}",
                                       "body": m} for m in batch]}
        if operation == "webpage_send_heartbeat":  # the page's acknowledgements ride on it
            acks = body.get("acks") or {}
            handles = [*acks.get("history", []), *acks.get("live", [])]
            self.acked.extend(handles)
            return 200, {"role": "master", "master_client_id": ME, "server_time": 0.0, "last_seq": 7,
                         "acknowledged": len(handles)}
        if operation == "webpage_get_events":
            wanted = [e.to_dict() for e in self.repair if e.seq > body["after_seq"]]
            return 200, {"events": wanted[: body["limit"]], "last_seq": 7}
        if operation == "webpage_get_session_status":
            return 200, {"session_id": SID, "status": "active", "last_seq": 7}
        return 200, {}

    async def get_json(self, url: str) -> tuple[int, Any]:
        raise AssertionError("nothing to fetch")


def saved_state_of_the_old_incarnation() -> MemoryStore:
    state = PageState()
    for seq in range(1, 6):
        state = apply(state, role_change(seq, OLD, "zzzzzzzzzzzz"))
    store = MemoryStore()
    store.save(f"pbfm:{SID}", json.dumps({"v": STORE_VERSION, "client_id": "zzzzzzzzzzzz", "incarnation": OLD,
                                          "state": state.to_dict()}))
    return store


def test_the_old_incarnations_state_and_messages_are_dropped_whatever_their_seqs() -> None:
    history = [role_change(seq, NEW, ME) for seq in range(1, 6)] + [end_of_history(SID, 5, 1.0, NEW)]
    # Seq 6 twice on the live queue: the old incarnation's (a leftover) and ours. Seq 7 is ours, but
    # arrives only after a gap at 6 would have been repaired — the repair offers both incarnations' 6.
    live = [role_change(6, OLD, "zzzzzzzzzzzz"), role_change(6, NEW, ME), role_change(7, NEW, ME)]
    server = Server(history, live, repair=[role_change(6, OLD, "zzzzzzzzzzzz")])

    async def scenario() -> SessionManager:
        page = SessionManager(SID, server, store=saved_state_of_the_old_incarnation(), poll_mode="server",
                              history_wait_s=0, live_wait_s=0)
        assert (page.incarnation, page.state.last_seq) == (OLD, 5)  # restored, shown at once
        server.manager = page
        await asyncio.wait_for(page.poll_loop(), 10)
        return page

    page = asyncio.run(scenario())
    assert page.metrics.discarded_states == 1 and page.incarnation == NEW
    # The new log from 1, although the saved state was already at 5.
    assert page.applied_seqs == [1, 2, 3, 4, 5, 6, 7]
    assert page.state.master_client_id == ME and page.state.last_seq == 7
    assert page.metrics.other_incarnation >= 1
    # The foreign message was acknowledged (not redelivered forever).
    assert f"live-6-{OLD}" in server.acked
    saved = json.loads(page.store.load(f"pbfm:{SID}") or "{}")
    assert saved["incarnation"] == NEW and saved["state"]["last_seq"] == 7


def test_a_repair_never_applies_an_event_of_another_incarnation() -> None:
    history = [role_change(seq, NEW, ME) for seq in range(1, 6)] + [end_of_history(SID, 5, 1.0, NEW)]
    # Seq 6 never arrives on the live queue: 7 reveals the gap, and the repair answers the old
    # incarnation's 6 first (say, a server mid-re-creation), then ours.
    live = [role_change(7, NEW, ME)]
    server = Server(history, live, repair=[role_change(6, OLD, "zzzzzzzzzzzz")])

    async def scenario() -> SessionManager:
        page = SessionManager(SID, server, store=MemoryStore(), poll_mode="server", history_wait_s=0,
                              live_wait_s=0)
        server.manager = page
        await asyncio.wait_for(page.poll_loop(), 10)
        return page

    page = asyncio.run(scenario())
    assert page.metrics.other_incarnation >= 1
    assert 6 not in page.applied_seqs and page.state.last_seq == 5  # still waiting for our own 6
    assert page.state.master_client_id == ME
