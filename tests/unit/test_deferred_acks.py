"""The page's acknowledgements ride on its heartbeat: when handles go, the bound, the stop flush.

The shipped ``SessionManager`` against ``ScriptedServer`` (which records every handle it hands out
and every one acknowledged, and counts heartbeats that carried some), on a clock the test moves.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any

import pytest

from tests.unit.scripted_server import ScriptedServer
from web_py.messages import Envelope, MessageType, end_of_history
from web_py.pending_acks import MAX_ACKS_PER_CALL
from web_py.session_manager import ApiFailure, MemoryStore, SessionManager, TransportError

SID = "acks-1"


def _event(seq: int) -> tuple[Envelope, Any]:
    names = ("mid_market_price", "last_traded_price", "best_bid", "best_ask", "index_price", "change_24h",
             "change_24h_fraction", "volume_24h", "high_24h", "low_24h", "trade_count_24h")
    quote: dict[str, Any] = dict.fromkeys(names)
    quote.update(symbol="HASH-USD", display_price=f"0.{seq:05d}", source="simulated", fetched_at=float(seq))
    envelope = Envelope(SID, seq, MessageType.PRICE_UPDATE, 1.0, s3_key=f"sessions/{SID}/prices/{seq}.json")
    return envelope.with_document(quote), quote


def history(upto: int) -> list[Envelope | dict[str, Any]]:
    return [*(_event(s)[0] for s in range(1, upto + 1)), end_of_history(SID, upto, 1.0)]


def live(first: int, last: int) -> list[Envelope | dict[str, Any]]:
    return [_event(s)[0] for s in range(first, last + 1)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def page(server: ScriptedServer, clock: Clock) -> SessionManager:
    async def no_sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    return SessionManager(SID, server, store=MemoryStore(), clock=clock, sleep=no_sleep, jitter=lambda: 0.5)


def scripted(last_seq: int, hist: list[Envelope | dict[str, Any]], queue: list[Envelope | dict[str, Any]],
             *, direct: bool = True, **options: Any) -> ScriptedServer:
    return ScriptedServer(SID, _event, last_seq, history=hist, live=queue, snapshot_document=lambda seq: {},
                          direct=direct, **options)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def live_handles(server: ScriptedServer) -> tuple[list[str], list[str]]:
    return [h for h in server.delivered if h[0] == "l"], [h for h in server.deleted if h[0] == "l"]


class NextHeartbeatFails:
    """The scripted server's network, but once ``armed`` its next heartbeat fails: cut (raises
    ``TransportError``), or answered ``answer`` when one is given."""

    def __init__(self, server: ScriptedServer, answer: tuple[int, Any] | None = None) -> None:
        self.server, self.answer, self.armed = server, answer, False
        self.get_json, self.get_text = server.get_json, server.get_text

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.armed and path.endswith("webpage_send_heartbeat"):
            self.armed = False
            if self.answer is None:
                raise TransportError("cut")
            return self.answer
        return await self.server.post(path, body)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "poll=server"])
def test_live_handles_wait_for_the_next_heartbeat_which_carries_them_all(direct: bool) -> None:
    server, clock = scripted(6, history(1), live(2, 6), batch=lambda: 1, direct=direct), Clock()
    manager = page(server, clock)

    async def scenario() -> None:
        await manager.connect()
        while manager.processor.phase == "history":
            await manager.poll_once()  # the history: its handles go at once (one message group)
        assert sorted(server.deleted) == sorted(h for h in server.delivered if h[0] == "h")
        calls = server.requests["webpage_send_heartbeat"]
        for _ in range(5):  # five updates within one interval, one per long-poll
            clock.now += 0.1
            await manager.poll_once()
        delivered, deleted = live_handles(server)
        assert len(delivered) == 5 and deleted == []
        assert server.requests["webpage_send_heartbeat"] == calls  # no call of ours in between
        assert manager.applied_seqs == [1, 2, 3, 4, 5, 6]
        await manager.heartbeat_once()  # the beat, when it is due
        assert server.requests["webpage_send_heartbeat"] == calls + 1
        assert server.requests["heartbeat_with_acks"] == 3  # the history's two polls, and this one
        assert live_handles(server)[1] == delivered
        assert manager.metrics.acks_sent == len(server.deleted)
        await manager.heartbeat_once()  # nothing gathered since: a plain beat
        assert server.requests["heartbeat_with_acks"] == 3

    run(scenario())
    assert server.requests["webpage_delete_message"] == 0
    assert (server.requests["webpage_poll_queue"] == 0) == direct


def test_the_heartbeat_loop_sends_one_call_per_interval_however_many_updates() -> None:
    # 30 updates at ten a second, polled one by one, while the heartbeat loop runs on the same
    # (test-moved) clock: the server hears from the page once per interval, acks included.
    server, clock = scripted(31, history(1), live(2, 31), batch=lambda: 1), Clock()
    manager = page(server, clock)
    beats: list[float] = []
    answer = server._webpage_send_heartbeat

    def counting(body: dict[str, Any]) -> dict[str, Any]:
        beats.append(clock.now)
        return answer(body)

    server._webpage_send_heartbeat = counting  # type: ignore[method-assign]

    async def scenario() -> None:
        await manager.connect()
        interval = manager.joined.heartbeat_interval_s if manager.joined else 0.0
        while manager.processor.phase == "history":
            await manager.poll_once()
        started = clock.now
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            await asyncio.sleep(0)

        manager._sleep = sleep
        beating = asyncio.ensure_future(manager.heartbeat_loop())
        for _ in range(30):
            clock.now += 0.1
            await manager.poll_once()
            for _ in range(5):
                await asyncio.sleep(0)  # let the heartbeat loop look at the clock
        manager.stop()
        beating.cancel()
        later = [b for b in beats if b > started]
        gaps = [b - a for a, b in itertools.pairwise(later)]
        assert 2 <= len(later) <= (clock.now - started) / interval + 1, beats  # at most one per interval
        assert all(gap >= interval * 0.9 for gap in gaps), gaps

    run(scenario())
    delivered, deleted = live_handles(server)
    assert len(delivered) == 30 and len(deleted) >= 20  # the last beat's handles may still be pending
    assert manager.applied_seqs == list(range(1, 32))


def test_more_handles_than_one_call_carries_go_early_bounded_per_call() -> None:
    count = MAX_ACKS_PER_CALL + 15
    server, clock = scripted(count + 1, history(1), live(2, count + 1)), Clock()
    manager = page(server, clock)
    sizes: list[int] = []
    answer = server._webpage_send_heartbeat

    def recording(body: dict[str, Any]) -> dict[str, Any]:
        sizes.append(sum(map(len, (body.get("acks") or {}).values())))
        return answer(body)

    server._webpage_send_heartbeat = recording  # type: ignore[method-assign]

    async def scenario() -> None:
        await manager.connect()
        await manager.poll_once()  # history
        for _ in range(7):  # 65 live messages, 10 a poll, within one interval
            await manager.poll_once()

    run(scenario())
    # The history's single handle pair, then one early call when 50 were waiting; 15 wait for the beat.
    assert sizes == [2, MAX_ACKS_PER_CALL]
    assert manager._acks.count("live") == 15


def test_history_handles_go_after_each_history_batch() -> None:
    # The history queue is one FIFO group: its next batch comes only once the previous is deleted.
    server, clock = scripted(25, history(25), [], batch=lambda: 10), Clock()
    manager = page(server, clock)

    async def scenario() -> None:
        await manager.connect()
        for expected in (10, 20, 26):
            await manager.poll_once()
            assert len(server.deleted) == expected == len(server.delivered)
        assert manager.processor.phase == "live"

    run(scenario())
    assert server.requests["heartbeat_with_acks"] == 3


def test_a_rejoin_acknowledges_the_history_it_had_received_before_polling_the_new_one() -> None:
    # The server removed the browser (a deleted queue, a sweep) while a history batch was in flight.
    # Behind that batch the history queue (one FIFO group) would hold the rejoin's new history back
    # for a whole visibility timeout: its handles go with the first beat after the join.
    server, clock = scripted(5, history(5), [], batch=lambda: 3), Clock()
    network = NextHeartbeatFails(server, answer=(410, {"error": "gone", "message": "removed; join again"}))
    manager = SessionManager(SID, network, clock=clock)

    async def scenario() -> None:
        await manager.connect()
        network.armed = True
        with pytest.raises(ApiFailure) as failure:
            await manager.poll_once()  # three history messages applied; their acknowledgement is refused
        assert failure.value.needs_join
        in_flight = list(server.delivered)
        assert len(in_flight) == 3 and server.deleted == []
        await manager.connect()
        await manager.poll_once()
        assert server.deleted[:3] == in_flight  # before the new history's first batch came
        while manager.processor.phase == "history":
            await manager.poll_once()

    run(scenario())
    assert manager.state.last_seq == 5


@pytest.mark.parametrize("stop", [True, False], ids=["stopped", "crashed"])
def test_stopping_sends_what_is_pending_and_a_crash_does_not(stop: bool) -> None:
    server, clock = scripted(5, history(1), live(2, 5), batch=lambda: 1), Clock()
    manager = page(server, clock)

    async def scenario() -> None:
        await manager.connect()
        loop = asyncio.ensure_future(manager.poll_loop())
        while manager.state.last_seq < 5:
            await asyncio.sleep(0)
        if stop:
            manager.stop()
            await asyncio.wait_for(loop, 5)
        else:
            loop.cancel()  # the tab closed mid-poll
            await asyncio.gather(loop, return_exceptions=True)

    run(scenario())
    delivered, deleted = live_handles(server)
    assert len(delivered) == 4
    # Crashed: SQS hands them out again after the visibility timeout; the next page drops them.
    assert deleted == (delivered if stop else [])


def test_handles_of_a_failed_heartbeat_go_with_the_next() -> None:
    server, clock = scripted(3, history(1), live(2, 3), batch=lambda: 2), Clock()
    network = NextHeartbeatFails(server)
    manager = SessionManager(SID, network, clock=clock)

    async def scenario() -> None:
        await manager.connect()
        await manager.poll_once()
        await manager.poll_once()
        network.armed = True
        with pytest.raises(TransportError):
            await manager.heartbeat_once()
        assert live_handles(server)[1] == []
        await manager.heartbeat_once()

    run(scenario())
    delivered, deleted = live_handles(server)
    assert deleted == delivered and len(deleted) == 2


def test_a_live_batch_out_of_order_applies_without_a_repair() -> None:
    # A group per live message: SQS may hand a batch out of order. Sorted, it needs no repair.
    server, clock = scripted(4, history(1), [_event(3)[0], _event(2)[0], _event(4)[0]], batch=lambda: 3), Clock()
    manager = page(server, clock)

    async def scenario() -> None:
        await manager.connect()
        await manager.poll_once()
        await manager.poll_once()

    run(scenario())
    assert manager.applied_seqs == [1, 2, 3, 4]
    assert manager.metrics.repairs == 0 and server.requests["webpage_get_events"] == 0


def test_the_parting_heartbeat_carries_what_is_pending_once() -> None:
    server, clock = scripted(5, history(1), live(2, 5), batch=lambda: 1), Clock()
    manager = page(server, clock)
    assert manager.parting_heartbeat() is None  # not joined: nothing to say

    async def scenario() -> None:
        await manager.connect()
        while manager.state.last_seq < 5:
            await manager.poll_once()

    run(scenario())
    delivered, deleted = live_handles(server)
    assert len(delivered) == 4 and deleted == []
    parting = manager.parting_heartbeat()
    assert parting is not None
    path, body = parting
    # What the unload handler sends (fetch keepalive) is the heartbeat the server already takes.
    assert path == "/api/webpage_send_heartbeat" and body["session_id"] == SID
    asyncio.run(server.post(path, body))
    assert live_handles(server)[1] == delivered
    assert manager.parting_heartbeat() is None  # taken: a second pagehide sends nothing
