"""A restart of the local stack with a state directory loses nothing, and an open page recovers alone.

The same ports (the page's URL stays right), the session and its log, the cookie's participant and
its incarnation all survive the restart (``serve --state-dir``'s promise).

Two real ``pbfm-webpage serve`` processes one after the other (stopped with Ctrl-C, as a user does;
separate processes, since moto servers in one process share their state) on the same ports and
state directory. Between them the page's own loop (``SessionManager.run``, the code the browser
runs) keeps going: it sees the outage, finds its queues gone (410) on the new stack, joins again
with the same cookie (same client id) and shows the events published after the restart — no
reload, no new manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbfm_tooling.http_transport import HttpxTransport
from tests.browser.stack_client import mcp_call, rest_call
from tests.integration.test_cli import start, stop
from web_py.session_manager import MemoryStore, SessionManager

pytestmark = pytest.mark.slow


@pytest.fixture
def environment() -> Iterator[None]:
    """The cookie secret must come from the state directory, not from the test run's PBFM_COOKIE_SECRET."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("PBFM_")}
    os.environ.pop("PBFM_COOKIE_SECRET", None)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("PBFM_")]:
            del os.environ[key]
        os.environ.update(saved)


async def until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def test_an_open_page_recovers_by_itself_after_a_restart(tmp_path: Path, environment: None) -> None:
    state = str(tmp_path / "state")
    sid = "restart-1"
    process, base_url = start("serve", "--price-source", "simulated", state_dir=state)
    port = int(base_url.rsplit(":", 1)[1])
    try:
        rest_call(base_url, "webpage_create_session", session_id=sid)
        for _ in range(3):
            before = mcp_call(base_url, "webpage_update_hash_price_display", session_id=sid)["seq"]

        async def scenario() -> None:
            nonlocal process

            async def quick_sleep(seconds: float) -> None:
                await asyncio.sleep(min(seconds, 0.3))

            page = SessionManager(sid, HttpxTransport(base_url), store=MemoryStore(), history_wait_s=1,
                                  live_wait_s=1, sleep=quick_sleep)
            loop = asyncio.ensure_future(page.run())
            # Price x3, ROLE_CHANGE, PARTICIPANTS.
            await until(lambda: page.state.last_seq >= before + 2 and page.view.connection == "live", 30, "not live")
            client_id, incarnation, shown = page.view.client_id, page.incarnation, page.state.last_seq
            joins = page.metrics.joins

            output = await asyncio.to_thread(stop, process)
            assert "stopped" in output
            await until(lambda: page.view.connection == "reconnecting", 30, "the outage went unnoticed")
            began = time.monotonic()
            process, again = await asyncio.to_thread(
                lambda: start("serve", "--price-source", "simulated", state_dir=state, port=port))
            assert again == base_url  # the same ports: open pages' URLs stay right
            restarted_s = time.monotonic() - began
            # The session and its log came back from the state directory.
            kept = await asyncio.to_thread(lambda: rest_call(base_url, "webpage_create_session", session_id=sid))
            assert kept["created"] is False and kept["last_seq"] >= before
            after = await asyncio.to_thread(
                lambda: mcp_call(base_url, "webpage_update_hash_price_display", session_id=sid))
            await until(lambda: page.state.last_seq >= after["seq"] and page.view.connection == "live", 60,
                        f"the page did not recover (at {page.state.last_seq}, {page.view.connection})")
            page.stop()
            loop.cancel()  # rather than let its live long-poll (20 s, the presigned URL's) run out
            with contextlib.suppress(asyncio.CancelledError):
                await loop

            assert page.view.client_id == client_id, "the cookie stayed valid: same participant"
            # Its queues were gone with the old process: it joined again, into the same incarnation.
            assert page.incarnation == incarnation and page.metrics.joins > joins
            assert page.state.price is not None and page.state.price.to_dict() == after["price"]
            assert page.applied_seqs == sorted(set(page.applied_seqs)) and after["seq"] in page.applied_seqs
            assert after["seq"] > shown and restarted_s < 60
            await page.http.aclose()

        asyncio.run(scenario())
    finally:
        if process.poll() is None:
            stop(process)
    secret = (Path(state) / "cookie-secret").read_text().strip()
    assert len(secret) == 64 and secret not in Path("pyproject.toml").read_text()
