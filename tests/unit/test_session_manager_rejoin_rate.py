"""The page's loop facing a server that takes its join and then refuses its identity, every time
(a cookie it cannot see, a queue that vanishes at once): it joins again, but never in a tight loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from web_py.session_manager import SessionManager


class ForgetfulHttp:
    """Every join succeeds; every other call answers ``status`` (the server does not know us)."""

    def __init__(self, status: int, clock: list[float]) -> None:
        self.status = status
        self.clock = clock
        self.join_times: list[float] = []

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        await asyncio.sleep(0)  # a request yields, as fetch does
        if path.endswith("/webpage_join_session"):
            self.join_times.append(self.clock[0])
            return 200, {"client_id": "aaaaaaaaaaaa", "role": "master", "master_client_id": "aaaaaaaaaaaa",
                         "resumed": False, "last_seq": 0, "heartbeat_interval_s": 15.0,
                         "heartbeat_timeout_s": 30.0}
        return self.status, {"error": "unauthorized", "message": "This call needs the session cookie."}

    async def get_json(self, url: str) -> tuple[int, Any]:
        raise AssertionError("nothing to fetch")


@pytest.mark.parametrize("status", [401, 404, 410])
def test_a_join_refused_right_after_it_succeeded_backs_off(status: int) -> None:
    clock = [0.0]
    http = ForgetfulHttp(status, clock)
    minutes = 10

    async def sleep(seconds: float) -> None:
        clock[0] += seconds
        await asyncio.sleep(0)

    async def scenario() -> None:
        page = SessionManager("s1", http, sleep=sleep, clock=lambda: clock[0], jitter=lambda: 0.5)

        async def stop_later() -> None:
            while clock[0] < minutes * 60 and len(http.join_times) < 1000:
                await asyncio.sleep(0)
            page.stop()

        await asyncio.gather(page.poll_loop(), stop_later())

    asyncio.run(scenario())
    # At the ceiling of the back-off (15 s) that is 4 joins a minute, plus the climb to it.
    assert len(http.join_times) <= 4 * minutes + 6, http.join_times[:20]
    last_minute = [t for t in http.join_times if (minutes - 1) * 60 <= t < minutes * 60]
    assert 1 <= len(last_minute) <= 4
