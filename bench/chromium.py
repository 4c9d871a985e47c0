"""Figures in real Chromium (the page in Pyodide): update latency across 8 pages, and boot.

* update latency: an MCP ``tools/call`` of ``webpage_update_hash_price_display`` is sent → the new
  price is in the DOM of each page (``[data-testid=price]``'s ``data-price``, with the root's
  ``data-last-seq`` at the event's seq). A MutationObserver in each page stamps the moment with
  ``performance.timeOrigin + performance.now()`` — the same wall clock as the sender, one machine.
* boot: ``page.goto`` → the first price in the DOM, one page in a fresh context (no HTTP cache).
* idle viewer: with the same pages open and nothing published for a minute, the requests that
  reached our server and the seconds they held it, per viewer-minute (the local stack counts them
  per path). With direct polling the long-polls go to SQS; what remains is heartbeats.

Pages are opened one after the other (a Pyodide boot is CPU bound; eight at once on two cores
would measure the CPU, not the page).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter
from typing import Any

import httpx

from bench.harness import new_session
from bench.stats import summary
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.tls import tls_context

# Debian's chromium, or what ./dev.sh found or unpacked instead (it exports PBFM_CHROMIUM).
CHROMIUM = os.environ.get("PBFM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 # Any name but 127.0.0.1 resolves to nothing: a CDN request fails instead of working.
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
BOOT_TIMEOUT_S = 60.0
IDLE_S = 60.0  # the idle window of the "per idle viewer-minute" figure
UPDATE_TIMEOUT_S = 10.0

# Records, per data-last-seq, when a price was first in the DOM with that sequence, and which.
OBSERVER = """
(() => {
  const seen = {}; window.__pbfm_bench = {seen, firstPrice: null};
  const look = () => {
    const root = document.getElementById('app');
    const price = document.querySelector('[data-testid="price"]');
    const value = price ? price.getAttribute('data-price') : null;
    if (!root || !value) return;
    const now = performance.timeOrigin + performance.now();
    if (window.__pbfm_bench.firstPrice === null) window.__pbfm_bench.firstPrice = now;
    const seq = root.getAttribute('data-last-seq');
    if (!(seq in seen)) seen[seq] = [now, value];
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true, attributes: true,
                                                characterData: true});
})();
"""


class McpCaller:
    """Plain JSON-RPC ``tools/call`` over the stateless Streamable HTTP endpoint (JSON responses)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(timeout=30, verify=tls_context(), headers={
            "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"})
        self.url = url
        self.ids = itertools.count(1)
        self.response_s: list[float] = []

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Returns the epoch ms at which the request was sent, and the tool's structured result."""
        body = {"jsonrpc": "2.0", "id": next(self.ids), "method": "tools/call",
                "params": {"name": name, "arguments": arguments}}
        sent_ms = time.time() * 1000
        response = self.http.post(self.url, json=body)
        self.response_s.append(time.time() - sent_ms / 1000)
        response.raise_for_status()
        result = response.json()["result"]
        if result.get("isError"):
            raise RuntimeError(f"{name}: {json.dumps(result)[:300]}")
        return sent_ms, result["structuredContent"]

    def close(self) -> None:
        self.http.close()


def _wait_first_price(page: Any, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        first = page.evaluate("window.__pbfm_bench && window.__pbfm_bench.firstPrice")
        if first:
            return float(first)
        time.sleep(0.05)
    return None


def _page_problem(page: Any) -> str:
    info = page.evaluate("""(() => { const r = document.getElementById('app');
        return r ? {python: r.dataset.python || null, failed: r.dataset.failed || null,
                    seq: r.getAttribute('data-last-seq'), text: r.innerText.slice(0, 160)} : null; })()""")
    return f"no price in the DOM after {BOOT_TIMEOUT_S:.0f}s: {info}"


def measure(stack: LocalStack, pages: int, updates: int, floor_ms: float) -> dict[str, Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed"
        return {"update_latency": {"missing": reason}, "boot": {"missing": reason}}
    session_id = new_session(stack, "ui")
    mcp = McpCaller(stack.mcp_url)
    out: dict[str, Any] = {}
    try:
        mcp.call("webpage_update_hash_price_display", {"session_id": session_id})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                out["boot"] = _boot(browser, stack, session_id, repeats=3)
                if out["boot"].get("missing"):
                    out["update_latency"] = {"missing": out["boot"]["missing"]}
                else:
                    out["update_latency"] = _updates(browser, stack, mcp, session_id, pages, updates, floor_ms)
            finally:
                browser.close()
    finally:
        mcp.close()
    return out


def _delta(stack: LocalStack, before: Counter[str]) -> Counter[str]:
    return stack.requests - before


def _idle_cost(stack: LocalStack, *, viewers: int, seconds: float) -> dict[str, Any]:
    """Requests, and seconds they held our server, per idle viewer-minute: the pages stay open
    and nothing is published for ``seconds``. A request is counted (with its seconds) when it ends:
    with server long-polls (``?poll=server``) those spanning the window's edges roughly balance."""
    requests, held = stack.requests.copy(), dict(stack.request_seconds)
    time.sleep(seconds)
    counted = stack.requests - requests
    spent = {path: total - held.get(path, 0.0) for path, total in stack.request_seconds.items()}
    minutes = viewers * seconds / 60
    return {"viewers": viewers, "seconds": seconds, "requests_by_path": dict(counted),
            "requests_per_viewer_minute": round(sum(counted.values()) / minutes, 2),
            "request_seconds_per_viewer_minute": round(sum(spent.values()) / minutes, 3)}


def _boot(browser: Any, stack: LocalStack, session_id: str, repeats: int) -> dict[str, Any]:
    samples: list[float] = []
    for _ in range(repeats):
        context = browser.new_context()
        try:
            context.add_init_script(OBSERVER)
            page = context.new_page()
            started_ms = time.time() * 1000
            page.goto(stack.page_url(session_id))
            first = _wait_first_price(page, BOOT_TIMEOUT_S)
            if first is None:
                return {"missing": _page_problem(page)}
            samples.append((first - started_ms) / 1000)
        finally:
            context.close()
    return {"first_price": summary(samples, keep=True)}


def _updates(browser: Any, stack: LocalStack, mcp: McpCaller, session_id: str, pages: int, updates: int,
             floor_ms: float) -> dict[str, Any]:
    contexts, opened = [], []
    try:
        for _ in range(pages):
            context = browser.new_context()
            context.add_init_script(OBSERVER)
            contexts.append(context)
            page = context.new_page()
            page.goto(stack.page_url(session_id))
            if _wait_first_price(page, BOOT_TIMEOUT_S) is None:
                return {"missing": _page_problem(page)}
            opened.append(page)
        time.sleep(1.0)  # every page settled into its live long poll
        mcp.response_s.clear()
        before_updates = stack.requests.copy()
        latencies: list[float] = []
        per_update: list[dict[str, Any]] = []
        wrong: list[str] = []
        for _ in range(updates):
            sent_ms, result = mcp.call("webpage_update_hash_price_display", {"session_id": session_id})
            seq, price = str(result["seq"]), result["price"]["display_price"]
            deadline = time.monotonic() + UPDATE_TIMEOUT_S
            seen: list[Any] = [None] * len(opened)
            while time.monotonic() < deadline and any(s is None for s in seen):
                for i, page in enumerate(opened):
                    if seen[i] is None:
                        seen[i] = page.evaluate(f"window.__pbfm_bench.seen[{json.dumps(seq)}] || null")
                time.sleep(0.02)
            arrived = [s for s in seen if s is not None]
            wrong += [f"seq {seq}: showed {s[1]}, sent {price}" for s in arrived if s[1] != price]
            page_ms = [s[0] - sent_ms for s in arrived]
            latencies += [ms / 1000 for ms in page_ms]
            per_update.append({"seq": int(seq), "pages": len(arrived), "max_ms": round(max(page_ms, default=0), 1)})
            time.sleep(0.3)
        latency = summary(latencies, keep=True)
        idle = _idle_cost(stack, viewers=len(opened), seconds=IDLE_S)
        return {"pages": pages, "updates": updates, "latency": latency, "mcp_response": summary(mcp.response_s),
                "server_requests_during_updates": dict(_delta(stack, before_updates)), "idle_viewer": idle,
                "missed": sum(pages - u["pages"]
                for u in per_update), "wrong_price": wrong[:5], "per_update": per_update,
                "over_floor_p95": round(latency["p95_ms"] / floor_ms, 2) if latency.get("n") else None}
    finally:
        for context in contexts:
            context.close()
