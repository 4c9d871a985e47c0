"""The page's loop when a server that knew it removes it (its queues are gone after a restart, a
sweep took it): it joins again at once, even right after an outage grew its back-off, and even soon
after its last join. Only a server that never takes the identity it gives is throttled
(``test_session_manager_rejoin_rate``); one that takes it and then removes it every time still is,
after one quick rejoin per window."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any

import pytest

from web_py.messages import end_of_history
from web_py.session_manager import REJOIN_BACKOFF_WITHIN_S, SessionManager

SID = "s1"
GONE = {"error": "gone", "message": "This browser was removed from the session; join again."}


class RemovingServer:
    """Joins, an empty session (history: just END_OF_HISTORY), long polls of the live queue that
    wait their whole time, heartbeats. ``down(t)``: every call answers 502 then; ``removes(t, joined_at)``: the
    browser joined at ``joined_at`` has been removed by ``t`` (every call but a join answers 410)."""

    def __init__(self, clock: list[float], sleep: Callable[[float], Any], *, heartbeat_interval_s: float,
                 down: Callable[[float], bool], removes: Callable[[float, float], bool]) -> None:
        self.clock, self.sleep = clock, sleep
        self.heartbeat_interval_s = heartbeat_interval_s
        self.down, self.removes = down, removes
        self.join_times: list[float] = []
        self.removed_answers: list[tuple[float, str]] = []  # (when, the call answered "removed")
        self.history: list[dict[str, Any]] = []

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        await asyncio.sleep(0)
        now = self.clock[0]
        operation = path.rsplit("/", 1)[1]
        if self.down(now):
            return 502, {"error": "bad_gateway", "message": "the server is restarting"}
        if operation == "webpage_join_session":
            self.join_times.append(now)
            self.history = [end_of_history(SID, 0, now).to_dict()]
            return 200, {"client_id": "aaaaaaaaaaaa", "role": "master", "master_client_id": "aaaaaaaaaaaa",
                         "resumed": len(self.join_times) > 1, "last_seq": 0,
                         "heartbeat_interval_s": self.heartbeat_interval_s,
                         "heartbeat_timeout_s": 3 * self.heartbeat_interval_s}
        if self.removes(now, self.join_times[-1]):
            self.removed_answers.append((now, operation))
            return 410, GONE
        if operation == "webpage_poll_queue":
            if body["queue"] == "history":
                batch, self.history = self.history, []
            else:
                wait = float(body["wait_seconds"])
                await self.sleep(wait)  # a long poll with nothing to say
                if any(self.down(now + k / 10) for k in range(int(wait * 10) + 1)):
                    return 502, {"error": "bad_gateway", "message": "the server went down mid-poll"}
                batch = []
            return 200, {"messages": [{"receipt_handle": f"h{n}", "body": m} for n, m in enumerate(batch)]}
        if operation == "webpage_send_heartbeat":
            return 200, {"role": "master", "master_client_id": "aaaaaaaaaaaa", "server_time": now, "last_seq": 0}
        if operation == "webpage_get_session_status":
            return 200, {"session_id": SID, "status": "active", "last_seq": 0}
        raise AssertionError(f"unexpected call {operation}")

    async def get_json(self, url: str) -> tuple[int, Any]:
        raise AssertionError("nothing to fetch")


class VirtualTime:
    """Simulated time for several coroutines at once: a sleep parks until the clock reaches its
    end, and the clock jumps to the earliest end once everything else has run as far as it can."""

    def __init__(self) -> None:
        self.now = [0.0]
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now[0] + max(seconds, 0.0), id(future), future))
        await future

    async def run_until(self, end: float, done: Callable[[], bool]) -> None:
        while self.now[0] < end and not done():
            for _ in range(200):  # let every runnable coroutine reach its next sleep
                await asyncio.sleep(0)
            if not self._sleepers:
                continue
            wake, _, future = heapq.heappop(self._sleepers)
            if future.done():  # a nap cut short by a wake-up
                continue
            self.now[0] = max(self.now[0], wake)
            future.set_result(None)


def run(minutes: float, *, down: Callable[[float], bool], removes: Callable[[float, float], bool],
        heartbeat_interval_s: float = 1.0) -> RemovingServer:
    time = VirtualTime()
    server = RemovingServer(time.now, time.sleep, heartbeat_interval_s=heartbeat_interval_s, down=down,
                            removes=removes)

    async def scenario() -> None:
        page = SessionManager(SID, server, sleep=time.sleep, clock=lambda: time.now[0], jitter=lambda: 0.5,
                              poll_mode="server")
        loops = [asyncio.ensure_future(page.poll_loop()), asyncio.ensure_future(page.heartbeat_loop())]
        await time.run_until(minutes * 60, lambda: len(server.join_times) >= 1000)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    asyncio.run(scenario())
    return server


@pytest.mark.parametrize("heartbeat_interval_s", [1.0, 60.0], ids=["heartbeat-notices", "poll-notices"])
def test_a_page_removed_after_an_outage_joins_again_at_once(heartbeat_interval_s: float) -> None:
    # Joined at 0; the server is down from 10 s to 20 s (the poll's back-off climbs to 8 s) and
    # comes back without the browser's queues, 20 s after the join. Whichever call hears
    # "removed" first, the heartbeat (it wakes the poll loop from its back-off) or the poll, the
    # page joins again at once.
    outage = (10.0, 20.0)
    server = run(1, heartbeat_interval_s=heartbeat_interval_s, down=lambda t: outage[0] <= t < outage[1],
                 removes=lambda t, joined_at: joined_at < outage[0] <= t)
    joins = server.join_times
    assert joins[0] == 0.0 and len(joins) == 2, joins
    first_removed, operation = server.removed_answers[0]
    expected = "webpage_send_heartbeat" if heartbeat_interval_s == 1.0 else "webpage_poll_queue"
    assert operation == expected, server.removed_answers
    assert joins[1] - first_removed < 0.1, (joins, server.removed_answers)
    assert joins[1] < REJOIN_BACKOFF_WITHIN_S, joins


def test_a_page_removed_while_it_long_polls_joins_again_at_once() -> None:
    # Removed 25 s after joining (a sweep, a restart), in the middle of a 20 s long poll: the next
    # heartbeat hears it, and the page does not wait for the poll to end.
    server = run(1, down=lambda t: False, removes=lambda t, joined_at: joined_at == 0.0 and t >= 25.0)
    joins = server.join_times
    assert len(joins) == 2, joins
    first_removed, operation = server.removed_answers[0]
    assert operation == "webpage_send_heartbeat", server.removed_answers
    assert joins[1] - first_removed < 0.1, (joins, server.removed_answers)


def test_a_server_that_removes_every_join_soon_after_still_gets_few_joins() -> None:
    # The identity works for 2 s after each join (a heartbeat gets through), then it is gone.
    minutes = 10
    joins = run(minutes, down=lambda t: False, removes=lambda t, joined_at: t - joined_at >= 2.0).join_times
    # One quick rejoin per 30 s window, the others at the back-off's ceiling (15 s): ≤ 6 a minute.
    assert len(joins) <= 6 * minutes + 6, joins[:30]
    last_minute = [t for t in joins if (minutes - 1) * 60 <= t < minutes * 60]
    assert 1 <= len(last_minute) <= 6, last_minute
