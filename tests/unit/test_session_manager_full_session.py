"""The page's loop facing a full session: it shows the server's message and waits, never a tight loop."""

from __future__ import annotations

import asyncio
from typing import Any

from web_py.render import render_page
from web_py.session_manager import FULL_SESSION_RETRY_S, SessionManager

FULL = {"error": "session_full", "message": "This session is full (1000 viewers); try again later.",
        "details": {"limit": 1000}}


class RefusingHttp:
    """Answers every join with 409 until told otherwise; counts the joins."""

    def __init__(self) -> None:
        self.joins = 0

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        assert path == "/api/webpage_join_session", path
        self.joins += 1
        return 409, FULL

    async def get_json(self, url: str) -> tuple[int, Any]:
        raise AssertionError("nothing to fetch")


def test_a_full_session_is_shown_and_asked_again_about_twice_a_minute() -> None:
    http = RefusingHttp()
    sleeps: list[float] = []
    notices: list[str | None] = []

    async def scenario() -> None:
        page = SessionManager("s1", http, sleep=sleep, jitter=lambda: 0.5)
        page.on_change = lambda state, view: notices.append(view.notice)

        async def stop_after_three() -> None:
            while http.joins < 3:
                await asyncio.sleep(0)
            page.stop()

        await asyncio.gather(page.poll_loop(), stop_after_three())
        html = render_page(page.state, page.view)
        assert "This session is full (1000 viewers)" in html and 'data-testid="notice"' in html

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert http.joins == 3
    # Each refusal waits the full-session pause (jitter fixed at the middle), not the short back-off.
    assert sleeps == [FULL_SESSION_RETRY_S] * 3
    assert FULL["message"] in notices
