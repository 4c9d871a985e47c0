"""The page runner's loop lets a cancelled tab finish before it closes (as ``asyncio.run`` does)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib

from pbfm_tooling.page_runner import LoopThread


def test_stopping_lets_a_cancelled_task_run_its_finally_blocks() -> None:
    loop = LoopThread(name="test-loop")
    finished: list[str] = []

    async def page() -> None:
        # Like SessionManager.run: cancelled in a long poll, it still cancels and awaits its heartbeat.
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.2)
            finished.append("cleaned up")

    started = loop.spawn(page())
    loop.run(asyncio.sleep(0.05))
    started.cancel()  # done at once for the caller; the task is still in its finally block
    with contextlib.suppress(concurrent.futures.CancelledError):
        started.result(timeout=1)
    assert finished == []
    loop.stop()
    assert finished == ["cleaned up"] and loop.loop.is_closed()
