"""SessionManager in CPython against the real local stack (the page's loop, minus the DOM)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from pbfm_tooling.http_transport import HttpxTransport
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner
from tests.browser.stack_client import mcp_call, rest_call
from web_py.messages import Envelope, MessageType
from web_py.session_manager import ApiFailure, MemoryStore, SessionManager, TransportError

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def publish(stack: LocalStack, session_id: str, count: int) -> int:
    seq = 0
    for _ in range(count):
        seq = mcp_call(stack.base_url, "webpage_update_hash_price_display", session_id=session_id)["seq"]
    return seq


async def drain(manager: SessionManager, until_seq: int, polls: int = 20) -> None:
    for _ in range(polls):
        if manager.state.last_seq >= until_seq and manager.processor.phase == "live":
            return
        await manager.poll_once()
    raise AssertionError(f"stuck at {manager.state.last_seq} (phase {manager.processor.phase}), wanted {until_seq}")


def manager(stack: LocalStack, session_id: str, http: HttpxTransport | None = None, **kwargs: Any) -> SessionManager:
    return SessionManager(session_id, http or HttpxTransport(stack.base_url), history_wait_s=1, live_wait_s=1, **kwargs)


def test_history_then_live_then_resume_without_replay(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    seq = publish(stack, session_id, 30)

    async def scenario() -> None:
        store = MemoryStore()
        seen: list[tuple[MessageType, int, str]] = []
        first = manager(stack, session_id, store=store, on_apply=lambda e, source: seen.append((e.type, e.seq, source)))
        joined = await first.connect()
        assert joined.role == "master"
        await drain(first, seq)
        # 30 events with snapshots every 25: the snapshot stands in for most of the history.
        assert first.metrics.applied_from_history < seq
        live_seq = publish(stack, session_id, 2)
        await drain(first, live_seq)
        assert first.metrics.applied_from_live >= 1
        assert first.applied_seqs == sorted(set(first.applied_seqs))
        # The observer hook sees every apply, the snapshot included, and where each came from.
        assert [seq for kind, seq, _ in seen if kind is not MessageType.SNAPSHOT] == first.applied_seqs
        assert [(seq, source) for kind, seq, source in seen if kind is MessageType.SNAPSHOT] == [(25, "history")]
        assert {source for kind, _, source in seen if kind is not MessageType.SNAPSHOT} >= {"live"}

        # A reload: same cookie jar, same store. The state is back before joining, and the history
        # the server sends again is dropped without fetching a single document.
        reloaded = manager(stack, session_id, HttpxTransport(stack.base_url, cookies=first.http.cookies), store=store)
        assert reloaded.state == first.state
        again = await reloaded.connect()
        assert again.client_id == joined.client_id and again.resumed
        await drain(reloaded, live_seq)
        assert reloaded.metrics.documents_fetched == 0
        assert reloaded.applied_seqs == []
        newest = publish(stack, session_id, 1)
        await drain(reloaded, newest)
        assert reloaded.applied_seqs == [newest]

    run(scenario())


def test_gap_is_repaired_from_the_event_log(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    publish(stack, session_id, 2)

    async def scenario() -> None:
        page = manager(stack, session_id)
        await page.connect()
        await drain(page, 2)
        shown = page.state.last_seq
        last = publish(stack, session_id, 3)
        # Offer only the newest event, as if those before it (the two prices, and the roster the
        # history's acknowledging heartbeat announced) were lost on the way.
        events = rest_call_with_cookie(page, "webpage_get_events", after_seq=last - 1, limit=1)
        await page.handle_message("live", events[0])
        assert page.state.last_seq == last
        assert page.metrics.repairs == 1 and page.metrics.applied_from_repair == last - 1 - shown >= 2
        await drain(page, last)
        assert page.applied_seqs == sorted(set(page.applied_seqs))

    run(scenario())


def rest_call_with_cookie(page: SessionManager, operation: str, **body: Any) -> list[dict[str, Any]]:
    import httpx

    response = httpx.post(
        f"{page.http.client.base_url}/api/{operation}",
        json={"session_id": page.session_id, **body},
        cookies=page.http.client.cookies,
    )
    response.raise_for_status()
    return list(response.json()["events"])


def test_lost_queues_mean_join_again(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    seq = publish(stack, session_id, 1)

    async def scenario() -> None:
        page = manager(stack, session_id)
        joined = await page.connect()
        await drain(page, seq)
        client = stack.service.store.get_client(session_id, joined.client_id)
        assert client is not None
        stack.service.queues.delete_queue(client.live_queue_url)
        stack.service.queues.delete_queue(client.history_queue_url)
        newer = publish(stack, session_id, 1)
        with pytest.raises(ApiFailure) as failure:
            await page.poll_once()
        assert failure.value.needs_join
        # What poll_loop does on such an answer: join again (queues recreated), then catch up.
        await page.connect()
        await drain(page, newer)
        # The rejoin itself is news (PARTICIPANTS), so the log is past the price by then.
        assert page.state.last_seq >= newer
        assert newer in page.applied_seqs
        assert page.applied_seqs == sorted(set(page.applied_seqs))

    run(scenario())


def test_observer_refresh_is_refused_and_shown(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)

    async def scenario() -> None:
        master, observer = manager(stack, session_id), manager(stack, session_id)
        await master.connect()
        assert (await observer.connect()).role == "observer"
        assert await observer.request_price_refresh() is False
        assert observer.view.notice == "Only the master can refresh the price."
        assert await master.request_price_refresh() is True
        await drain(master, rest_call(stack.base_url, "webpage_get_session_status", session_id=session_id)["last_seq"])
        assert master.state.price is not None

    run(scenario())


class FlakyHttp:
    """Fails the first ``failures`` calls at the transport level, then behaves like ``inner``."""

    def __init__(self, inner: HttpxTransport, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.failures > 0:
            self.failures -= 1
            raise TransportError("connection refused")
        return await self.inner.post(path, body)

    async def get_json(self, url: str) -> tuple[int, Any]:
        return await self.inner.get_json(url)

    async def get_text(self, url: str) -> tuple[int, str | None]:
        return await self.inner.get_text(url)


def test_run_backs_off_then_goes_live(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    seq = publish(stack, session_id, 1)
    sleeps: list[float] = []

    async def scenario() -> None:
        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            await asyncio.sleep(0)

        page = manager(stack, session_id, FlakyHttp(HttpxTransport(stack.base_url), 3), sleep=sleep, jitter=lambda: 0.5)
        connections: list[str] = []
        page.on_change = lambda state, view: connections.append(view.connection)
        task = asyncio.ensure_future(page.poll_loop())
        await wait_until(lambda: page.view.connection == "live" and page.state.last_seq >= seq)
        page.stop()
        # The loop now sits in a live long-poll straight from SQS, whose 20 s wait the server signed
        # into the URL (the test's live_wait_s only shortens server polls): close the tab instead.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert "reconnecting" in connections and connections[-1] == "live"
        # Exponential: 0.5, 1, 2 s (jitter fixed at the middle).
        assert [s for s in sleeps if s >= 0.5][:3] == [0.5, 1.0, 2.0]

    run(scenario())


async def wait_until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_malformed_message_is_dropped_and_acknowledged(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)

    async def scenario() -> None:
        page = manager(stack, session_id)
        await page.connect()
        await page.handle_message("live", {"v": 1, "nonsense": True}, "handle-1")
        assert page.metrics.malformed == 1
        assert page._acks.take() == {"live": ["handle-1"]}
        foreign = Envelope("other-session", 1, MessageType.ROLE_CHANGE, 1.0, payload={})
        await page.handle_message("live", foreign.to_dict(), "handle-2")
        assert page.state.last_seq == 0

    run(scenario())


def test_session_end_stops_the_loops(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    publish(stack, session_id, 1)

    async def scenario() -> None:
        page = manager(stack, session_id)
        task = asyncio.ensure_future(page.run())
        await wait_until(lambda: page.view.connection == "live")
        mcp_call(stack.base_url, "webpage_end_session", session_id=session_id, reason="demo over")
        await asyncio.wait_for(task, 20)
        assert page.state.ended and page.state.end_reason == "demo over"
        assert page.view.connection == "ended"

    run(scenario())


def test_tabs_of_one_browser_are_participants_of_their_own_and_a_reload_keeps_its_id(
        stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    seq = publish(stack, session_id, 2)
    with PageRunner(stack.base_url, history_wait_s=1, live_wait_s=1) as pages:
        first = pages.open(session_id)
        joined = first.join()
        first.catch_up(seq)
        # The same browser (cookie jar) in another tab (X-PBFM-Tab): a participant of its own.
        other = pages.open(session_id, cookies=first.transport.cookies).join()
        assert other.client_id != joined.client_id and not other.resumed
        # The first tab's loop keeps running: let it apply the newcomer's PARTICIPANTS (direct
        # polling delivers it at once) so the state compared below is the one it saved last.
        first.catch_up(rest_call(stack.base_url, "webpage_get_session_status", session_id=session_id)["last_seq"])
        # A reload: same cookie jar, tab id and storage; the page's restore() shows the saved state.
        shown = first.state
        reloaded = first.reload()
        assert reloaded.state == shown and reloaded.manager.metrics.restored_seq == shown.last_seq >= seq
        again = reloaded.join()
        assert again.client_id == joined.client_id and again.resumed
