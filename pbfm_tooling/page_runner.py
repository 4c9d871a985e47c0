"""Simulated browser tabs in one process, each running the page's own ``SessionManager``.

Tests, the benchmark and the chaos run stand in for many browsers with these. A tab is what the
page is minus the DOM: the shipped ``web_py.session_manager.SessionManager`` (join, history, live,
repair, heartbeat, reconnect) over ``HttpxTransport`` instead of ``pyfetch``, and a ``MemoryStore``
instead of ``sessionStorage``. Nothing of the loop is re-implemented here.

Every tab's coroutines run on one asyncio loop in a daemon thread (``LoopThread``), which is what a
threaded local server and a few hundred parked long polls need: one thread, sockets multiplexed.
Sync callers (pytest, the bench's timing code) drive and watch the tabs through blocking calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

import httpx

from pbfm_tooling.http_transport import HttpxTransport
from web_py.page_state import PageState
from web_py.session_manager import ApplyObserver, Http, Joined, MemoryStore, SessionManager

T = TypeVar("T")
CALL_TIMEOUT_S = 90.0


class LoopThread:
    """An asyncio event loop in a daemon thread; coroutines are handed to it from any thread."""

    def __init__(self, name: str = "page-runner") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = CALL_TIMEOUT_S) -> T:
        """Run ``coro`` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        # A cancelled tab's future is done at once, but its task still runs its ``finally`` blocks:
        # let every task finish before the loop closes, as ``asyncio.run`` does.
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self.run(_finish_every_other_task(), timeout_s=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


async def _finish_every_other_task() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        if not task.cancelling():  # one already cancelled is in its finally blocks: let it finish them
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Tab:
    """One browser tab: cookie jar, tab id and sessionStorage, and the ``SessionManager`` it runs.

    ``reload()`` keeps those three and starts a new ``SessionManager``, so the page's real
    ``restore()`` runs, exactly as after a reload in a browser.
    """

    def __init__(self, runner: PageRunner, session_id: str, *, cookies: httpx.Cookies | None = None,
                 tab_id: str | None = None, store: MemoryStore | None = None,
                 wrap: Callable[[HttpxTransport], Http] | None = None, on_apply: ApplyObserver | None = None,
                 **manager_options: Any) -> None:
        self.runner = runner
        self.session_id = session_id
        self.tab_id = secrets.token_hex(8) if tab_id is None else tab_id
        self.store = store if store is not None else MemoryStore()
        self._wrap, self._on_apply, self._options = wrap, on_apply, manager_options
        self.transport = HttpxTransport(runner.base_url, cookies=cookies, tab_id=self.tab_id)
        http: Http = wrap(self.transport) if wrap is not None else self.transport
        self.manager = SessionManager(session_id, http, store=self.store, on_apply=on_apply, **manager_options)
        self._task: concurrent.futures.Future[None] | None = None
        self.closed = False

    # --- what the page shows -----------------------------------------------------------------------

    @property
    def state(self) -> PageState:
        return self.manager.state

    @property
    def applied(self) -> list[int]:
        """Every event seq this tab's manager applied, in order."""
        return self.manager.applied_seqs

    @property
    def client_id(self) -> str | None:
        return self.manager.view.client_id

    @property
    def role(self) -> str | None:
        return self.manager.view.server_role

    @property
    def last_seq(self) -> int:
        return self.manager.state.last_seq

    # --- driving it ---------------------------------------------------------------------------------

    def join(self) -> Joined:
        """Join now (the page's ``connect``); ``start`` then polls without joining again."""
        return self.runner.loop.run(self.manager.connect())

    def start(self) -> None:
        """Run the page's loop (poll + heartbeat, reconnects) in the background until stopped."""
        if self._task is None:
            self._task = self.runner.loop.spawn(self.manager.run())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def failure(self) -> BaseException | None:
        """What ended the page's loop, if an exception did (None while it runs or after a clean end)."""
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return None
        return task.exception()

    def heartbeat(self) -> str | None:
        """One heartbeat now; the role the server answered."""
        self.runner.loop.run(self.manager.heartbeat_once())
        return self.role

    def call(self, operation: str, **body: Any) -> Any:
        """A REST call as this tab (its cookie and tab id); raises ``ApiFailure`` on an HTTP error."""
        return self.runner.loop.run(self.manager.call(operation, **body))

    def post(self, operation: str, **body: Any) -> httpx.Response:
        """The raw response to a REST call as this tab (``session_id`` filled in)."""
        body.setdefault("session_id", self.session_id)
        return self.runner.loop.run(self.transport.raw_post(f"/api/{operation}", body))

    def wait_until(self, condition: Callable[[Tab], bool], timeout_s: float = 30.0) -> None:
        """Start the loop if needed and wait for ``condition``; the loop's own failure is raised."""
        self.start()
        deadline = time.monotonic() + timeout_s
        while not condition(self):
            if self._task is not None and self._task.done():
                self._task.result()  # raises what stopped the loop, if anything did
                if not condition(self):
                    raise RuntimeError(f"{self.client_id}: the page's loop ended at seq {self.last_seq}")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.client_id}: not done after {timeout_s}s (seq {self.last_seq}, "
                                   f"phase {self.manager.processor.phase}, view {self.manager.view})")
            time.sleep(0.01)

    def catch_up(self, seq: int, timeout_s: float = 30.0) -> None:
        self.wait_until(lambda tab: tab.last_seq >= seq and tab.manager.processor.phase == "live", timeout_s)

    def kill(self) -> None:
        """Close the tab abruptly: the loop is cancelled wherever it is (typically in a long poll)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
                task.result(timeout=10)

    def stop(self) -> None:
        """Let the loop end on its own (after the current poll) and wait for it."""
        self.manager.stop()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(Exception):
                task.result(timeout=self.manager.live_wait_s + 15)

    def reload(self) -> Tab:
        """The same tab reloaded: this page goes away mid-whatever, a new one restores from the store."""
        self.kill()
        reloaded = Tab(self.runner, self.session_id, cookies=self.transport.cookies, tab_id=self.tab_id,
                       store=self.store, wrap=self._wrap, on_apply=self._on_apply, **self._options)
        self.runner.tabs.append(reloaded)
        self.close()
        return reloaded

    def close(self) -> None:
        if self.closed:
            return
        self.kill()
        self.closed = True
        with contextlib.suppress(Exception):
            self.runner.loop.run(self.transport.aclose(), timeout_s=10)


class PageRunner:
    """Opens tabs against one server and closes them all at the end."""

    def __init__(self, base_url: str, **manager_options: Any) -> None:
        self.base_url = base_url
        self.manager_options = manager_options
        self.loop = LoopThread()
        self.tabs: list[Tab] = []

    def open(self, session_id: str, **options: Any) -> Tab:
        """A new tab; ``options`` go to ``Tab`` (cookies, tab_id, store, wrap, on_apply, manager's)."""
        tab = Tab(self, session_id, **{**self.manager_options, **options})
        self.tabs.append(tab)
        return tab

    def close(self) -> None:
        for tab in self.tabs:
            tab.kill()
        for tab in self.tabs:
            tab.close()
        self.tabs.clear()
        self.loop.stop()

    def __enter__(self) -> PageRunner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
