"""Real Chromium for the page's tests (and scripts/test_mvp.py): offline, one context per person.

Chromium is Debian's (/usr/bin/chromium), never a playwright download. Every context records each
request it makes; ``Browsers.external_requests()`` lists any that went to a host other than
127.0.0.1, and the resolver rules make sure such a request could not succeed anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from bench.chromium import CHROMIUM, CHROMIUM_ARGS  # Debian's, or the one ./dev.sh exports

LOCAL_HOSTS = frozenset({"127.0.0.1"})
# What playwright raises when a renderer process dies under a test (tests/conftest.py reruns it).
RENDERER_CRASHED = [r"Target crashed", r"Page crashed"]
# Set on a test whose call failed with one of those (tests/conftest.py): ``browsers`` then relaunches Chromium.
RENDERER_DIED = pytest.StashKey[bool]()
# The tests' Chromium leaves Pyodide's WebAssembly in V8's baseline compiler: optimizing its hot
# functions costs ~0.6 core-seconds per boot (measured: 4.0 -> 3.4), which a page that lives seconds
# never earns back. Only the JIT's tiering changes, not what runs; the bench's Chromium figures keep
# the browser's defaults (bench/chromium.py).
TEST_CHROMIUM_ARGS = [*CHROMIUM_ARGS, "--js-flags=--wasm-tiering-budget=1000000000"]
# The boot of Pyodide is CPU bound (~3 s alone, ~10 s for four at once on two cores).
BOOT_TIMEOUT_MS = 60_000


@dataclass
class Browsers:
    browser: Browser
    # Launches a Chromium like this one (``relaunch``).
    launch: Callable[[], Browser]
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def person(self) -> BrowserContext:
        """A new browser context: its own cookies and storage, like a separate person."""
        context = self.browser.new_context()
        context.on("request", lambda request: self.requests.append(request.url))
        self.contexts.append(context)
        return context

    def open(self, url: str, context: BrowserContext | None = None) -> Page:
        page = (context or self.person()).new_page()
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))
        page.goto(url)
        return page

    def relaunch(self) -> None:
        """A fresh Chromium in place of this one (after a renderer died, nothing of it is reused)."""
        self.browser.close()
        self.browser = self.launch()

    def external_requests(self) -> list[str]:
        external = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            if parts.hostname not in LOCAL_HOSTS:
                external.append(url)
        return external


@contextmanager
def chromium(headless: bool = True) -> Iterator[Browsers]:
    with sync_playwright() as playwright:
        def launch() -> Browser:
            return playwright.chromium.launch(executable_path=CHROMIUM, args=TEST_CHROMIUM_ARGS, headless=headless)

        browsers = Browsers(launch(), launch)
        try:
            yield browsers
        finally:
            browsers.browser.close()


def wait_for_python(page: Page, timeout_ms: int = BOOT_TIMEOUT_MS) -> float:
    """Wait until main.py has run in ``page``; returns the seconds waited."""
    started = time.monotonic()
    page.wait_for_selector("#app[data-python]", state="attached", timeout=timeout_ms)
    return time.monotonic() - started


@dataclass(frozen=True)
class Shown:
    """What one page shows, read from the stable hooks."""

    last_seq: int
    price: str
    role: str
    connection: str
    client_id: str
    sparkline: str
    participants: str
    applied_seqs: tuple[int, ...]
    applied_twice: int
    restored_seq: int
    documents_fetched: int


def shown(page: Page) -> Shown:
    data = page.evaluate(
        """() => {
        const root = document.getElementById("app");
        const text = (sel) => root.querySelector(sel)?.textContent ?? "";
        return {
          dataset: {...root.dataset},
          price: root.querySelector('[data-testid="price"]')?.dataset.price ?? "",
          role: text('[data-testid="role"]'),
          connection: text('[data-testid="connection"]'),
          sparkline: root.querySelector('[data-testid="sparkline"]')?.innerHTML ?? "",
          participants: text('[data-testid="participants"] ul'),
        };
    }"""
    )
    ds = data["dataset"]
    seqs = tuple(int(s) for s in ds.get("appliedSeqs", "").split(",") if s)
    return Shown(
        last_seq=int(ds.get("lastSeq", "0")),
        price=data["price"],
        role=data["role"],
        connection=data["connection"],
        client_id=ds.get("clientId", ""),
        sparkline=data["sparkline"],
        participants=data["participants"],
        applied_seqs=seqs,
        applied_twice=int(ds.get("appliedTwice", "0")),
        restored_seq=int(ds.get("restoredSeq", "0")),
        documents_fetched=int(ds.get("documentsFetched", "0")),
    )


# How often a wait re-reads the page: playwright's default re-runs the check on every animation
# frame, which keeps each waiting page rendering at 60 Hz.
POLL_MS = 50


def wait_for_seq(page: Page, seq: int, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    """Wait until the page has applied everything up to ``seq`` (and shows it)."""
    page.wait_for_function(
        "seq => Number(document.getElementById('app').dataset.lastSeq || 0) >= seq",
        arg=seq,
        timeout=timeout_ms,
        polling=POLL_MS,
    )


def wait_for_live(page: Page, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    page.wait_for_selector('#app[data-connection="live"]', state="attached", timeout=timeout_ms)


def wait_for_role(page: Page, role: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    page.wait_for_function(
        "role => document.querySelector('[data-testid=\"role\"]')?.textContent === role",
        arg=role,
        timeout=timeout_ms,
        polling=POLL_MS,
    )
