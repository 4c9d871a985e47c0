"""The page's side of the browser: fetch, sessionStorage and the DOM (Pyodide only).

Everything that decides lives in the pure modules; this file only adapts them to the browser:
``pyfetch`` as the session manager's ``Http``, ``sessionStorage`` as its ``Store``, and a
renderer that replaces the root's content with ``render_page`` output (escaped HTML) at most
once per turn of the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

from js import Object, console, fetch, performance, window
from pyodide.ffi import create_proxy, to_js
from pyodide.http import pyfetch

try:
    from pyodide.ffi import jsnull
except ImportError:  # older Pyodide converted JS null to None
    jsnull = None

from web_py.page_state import PageState
from web_py.render import REFRESH_ACTION, View, render_page
from web_py.session_manager import SessionManager, TransportError

log = logging.getLogger("web_py.browser_io")


def is_null(value: Any) -> bool:
    """JS null arrives as ``jsnull`` (not None) in current Pyodide; undefined as None."""
    return value is None or value is jsnull


class ConsoleHandler(logging.Handler):
    """Logs to the browser console. PyScript shows anything written to stderr as a red error
    banner in the page, which is wrong for a warning such as a reconnect."""

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.levelno >= logging.ERROR:
            console.error(text)
        elif record.levelno >= logging.WARNING:
            console.warn(text)
        else:
            console.info(text)


TAB_KEY = "pbfm-tab"

# Test hooks keep only the tail, so a long session cannot grow the DOM without bound.
APPLIED_SEQS_SHOWN = 500


class FetchHttp:
    """``Http`` over the browser's fetch; ``base`` is the prefix of our routes ("/api" on API Gateway).

    ``credentials``: "same-origin" for the page (its signed cookie identifies it); the view in a chat
    says "omit" (it is identified by a token header, and never sends cookies cross-origin).
    """

    def __init__(self, base: str = "", tab_id: str = "", *, credentials: str = "same-origin") -> None:
        self.base = base
        self.credentials = credentials
        # With the cookie, the tab id makes this tab its own participant (see chalice_app/caller.py).
        self.headers = {"Content-Type": "application/json", "X-PBFM-Tab": tab_id}

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            response = await pyfetch(
                self.base + path,
                method="POST",
                body=json.dumps(body),
                headers=self.headers,
                credentials=self.credentials,
                cache="no-store",
            )
            text = await response.string()
        except Exception as exc:  # fetch rejects with a JS TypeError on network failure
            raise TransportError(f"POST {path}: {exc}") from exc
        self.answered(response.headers)
        return response.status, _parse(text)

    def answered(self, headers: dict[str, str]) -> None:
        """Told every answer's headers (lower-cased names); the view's transport reads its token here."""

    def post_and_forget(self, path: str, body: dict[str, Any]) -> None:
        """A POST that outlives the page (``keepalive``): sent while it unloads, its answer unread."""
        options = {"method": "POST", "body": json.dumps(body), "headers": dict(self.headers),
                   "credentials": self.credentials, "cache": "no-store", "keepalive": True}
        try:
            fetch(self.base + path, to_js(options, dict_converter=Object.fromEntries))
        except Exception as exc:  # a keepalive body over the browser's quota is refused at once
            log.warning("could not send the parting heartbeat: %s", exc)

    async def get_json(self, url: str) -> tuple[int, Any]:
        try:
            # omit: presigned S3 URLs need no cookie, and ours must never go to another origin.
            response = await pyfetch(url, method="GET", credentials="omit")
            text = await response.string()
        except Exception as exc:
            raise TransportError(f"GET document: {exc}") from exc
        return response.status, _parse(text)


    async def get_text(self, url: str) -> tuple[int, str | None]:
        try:
            # The page's long-poll of its own SQS queue: no cookie; never from the HTTP cache (the
            # same presigned URL is replayed until renewed, each answer is new).
            response = await pyfetch(url, method="GET", credentials="omit", cache="no-store")
            text = await response.string()
        except Exception as exc:
            raise TransportError(f"GET queue: {exc}") from exc
        return response.status, text


def _parse(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


class SessionStorageStore:
    """Per tab: a reload keeps the state, a second tab (same cookie) starts from the server."""

    def load(self, key: str) -> str | None:
        try:
            value = window.sessionStorage.getItem(key)
        except Exception:  # storage disabled (privacy settings): behave as a fresh page
            return None
        return value if isinstance(value, str) else None

    def save(self, key: str, value: str) -> None:
        try:
            window.sessionStorage.setItem(key, value)
        except Exception:
            log.warning("could not save the page state (storage full or disabled)")


class DomRenderer:
    """Replaces the root's content with the rendered state; coalesces bursts into one render."""

    def __init__(self, root: Any, manager: SessionManager | None = None) -> None:
        self.root = root
        self.manager = manager
        self._pending: tuple[PageState, View] | None = None
        self.renders = 0

    def __call__(self, state: PageState, view: View) -> None:
        first = self._pending is None
        self._pending = (state, view)
        if first:
            asyncio.get_event_loop().call_soon(self.flush)

    def flush(self) -> None:
        if self._pending is None:
            return
        state, view = self._pending
        self._pending = None
        # render_page escapes every piece of text; the markup itself is ours.
        self.root.innerHTML = render_page(state, view)
        data = self.root.dataset
        data.lastSeq = str(state.last_seq)
        data.connection = view.connection
        data.clientId = view.client_id or ""
        # dataset raises AttributeError for a missing attribute; getAttribute returns null.
        if state.price is not None and is_null(self.root.getAttribute("data-first-price-ms")):
            data.firstPriceMs = str(round(performance.now()))
        if self.manager is not None:
            seqs = self.manager.applied_seqs
            data.appliedSeqs = ",".join(str(s) for s in seqs[-APPLIED_SEQS_SHOWN:])
            data.appliedTwice = str(len(seqs) - len(set(seqs)))
            data.restoredSeq = str(self.manager.metrics.restored_seq)
            data.documentsFetched = str(self.manager.metrics.documents_fetched)
        self.renders += 1


def install_controls(root: Any, manager: SessionManager) -> Any:
    """One delegated click listener: the buttons are re-created on every render."""
    tasks: set[asyncio.Future[Any]] = set()

    def on_click(event: Any) -> None:
        button = event.target.closest(f'[data-action="{REFRESH_ACTION}"]')
        if is_null(button) or button.disabled:
            return
        task = asyncio.ensure_future(manager.request_price_refresh())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    proxy = create_proxy(on_click)
    root.addEventListener("click", proxy)
    return proxy


def tab_id(store: SessionStorageStore) -> str:
    """This tab's id: kept in sessionStorage, so it survives reloads and is not shared with other tabs."""
    existing = store.load(TAB_KEY)
    if existing:
        return existing
    fresh = secrets.token_hex(8)
    store.save(TAB_KEY, fresh)
    return fresh


async def start(root: Any) -> SessionManager:
    """Wire the session manager to the page and run it until the session ends."""
    session_id = str(root.dataset.sessionId)
    base = root.dataset.base
    store = SessionStorageStore()
    poll = root.getAttribute("data-poll")
    manager = SessionManager(session_id, FetchHttp("" if is_null(base) else str(base), tab_id(store)),
                             store=store, poll_mode="server" if poll == "server" else "direct")
    return await run(root, manager)


def install_parting_heartbeat(manager: SessionManager, http: FetchHttp) -> Any:
    """On ``pagehide`` (a reload, a closed tab, a link followed), acknowledge what the page applied
    since its last heartbeat, so those messages are not handed out again after their visibility
    timeout (they would be dropped as duplicates, but each costs an SQS receive)."""

    def on_pagehide(event: Any) -> None:
        parting = manager.parting_heartbeat()
        if parting is not None:
            http.post_and_forget(*parting)

    proxy = create_proxy(on_pagehide)
    window.addEventListener("pagehide", proxy)
    return proxy


async def run(root: Any, manager: SessionManager) -> SessionManager:
    """Render ``manager``'s state into ``root`` (and wire its buttons) until the session ends."""
    renderer = DomRenderer(root, manager)
    manager.on_change = renderer
    install_controls(root, manager)
    if isinstance(manager.http, FetchHttp):
        install_parting_heartbeat(manager, manager.http)
    # Show the saved state (after a reload) or the empty card at once, before joining.
    renderer(manager.state, manager.view)
    await manager.run()
    return manager
