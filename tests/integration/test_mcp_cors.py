"""CORS on /mcp, from a real Chromium page: an allowed origin calls the tools, any other is refused.

The page is served by its own little server under two names (``allowed.test`` and ``evil.test``);
the MCP endpoint is the real app of the local stack, reached as ``mcp.test`` so that the loopback
exception of the origin policy does not apply: only ``PBFM_ALLOWED_ORIGINS`` decides. Chromium
maps the three names to 127.0.0.1. The page sends the 2026-07-28 headers (``MCP-Protocol-Version``,
``Mcp-Method``, ``Mcp-Name``) and a bearer token, so the browser must preflight.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import sync_playwright

from bench.chromium import CHROMIUM
from pbfm_tooling.local_stack import LocalStack

pytestmark = pytest.mark.browser

TOKEN = "cors-token"
PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>MCP client</title></head><body>
<script>
async function callMcp(url, token, sessionId) {
  const body = {jsonrpc: "2.0", id: 1, method: "tools/call", params: {
    name: "webpage_create_session", arguments: {session_id: sessionId},
    _meta: {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}};
  try {
    const response = await fetch(url, {method: "POST", body: JSON.stringify(body), headers: {
      "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
      "Authorization": "Bearer " + token, "MCP-Protocol-Version": "2026-07-28",
      "Mcp-Method": "tools/call", "Mcp-Name": "webpage_create_session"}});
    return {ok: true, status: response.status, body: await response.json()};
  } catch (error) {
    return {ok: false, error: String(error)};
  }
}
</script></body></html>"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def allowed_stack(stack: LocalStack, page_port: int) -> Iterator[LocalStack]:
    original = stack.service.settings
    stack.service.settings = dataclasses.replace(
        original, mcp_token=TOKEN, allowed_origins=(f"http://allowed.test:{page_port}",))
    try:
        yield stack
    finally:
        stack.service.settings = original


def mcp_url_as(stack: LocalStack, host: str) -> str:
    parts = urlsplit(stack.mcp_url)
    return f"http://{host}:{parts.port}{parts.path}"


def test_a_browser_page_calls_mcp_from_an_allowed_origin_only(allowed_stack: LocalStack, page_port: int,
                                                             session_id: str) -> None:
    url = mcp_url_as(allowed_stack, "mcp.test")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
            "--host-resolver-rules=MAP allowed.test 127.0.0.1, MAP evil.test 127.0.0.1, MAP mcp.test 127.0.0.1, "
            "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            results = {}
            for name in ("allowed", "evil"):
                page = browser.new_context().new_page()
                page.goto(f"http://{name}.test:{page_port}/")
                results[name] = page.evaluate("([u, t, s]) => callMcp(u, t, s)", [url, TOKEN, f"{session_id}{name[0]}"])
        finally:
            browser.close()

    allowed = results["allowed"]
    assert allowed["ok"] is True, allowed
    assert allowed["status"] == 200
    created = allowed["body"]["result"]["structuredContent"]
    assert created["session_id"] == f"{session_id}a" and created["page_url"].startswith("http://mcp.test:")
    assert allowed_stack.service.store.get_session(f"{session_id}a") is not None
    # The browser refused to hand the page the answer, and the server never ran the tool.
    assert results["evil"]["ok"] is False and "Failed to fetch" in results["evil"]["error"]
    assert allowed_stack.service.store.get_session(f"{session_id}e") is None


def test_preflight_headers(allowed_stack: LocalStack, page_port: int) -> None:
    url = mcp_url_as(allowed_stack, "127.0.0.1")
    origin = f"http://allowed.test:{page_port}"
    ok = httpx.options(url, headers={"Origin": origin, "Host": "mcp.test", "Access-Control-Request-Method": "POST",
                                     "Access-Control-Request-Headers": "authorization,mcp-method,mcp-param-region"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == origin
    granted = {h.strip().lower() for h in ok.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name",
            "mcp-param-region"} <= granted
    assert "POST" in ok.headers["access-control-allow-methods"]
    exposed = {h.strip().lower() for h in ok.headers["access-control-expose-headers"].split(",")}
    assert {"mcp-session-id", "mcp-protocol-version", "www-authenticate"} <= exposed
    refused = httpx.options(url, headers={"Origin": "http://evil.test", "Host": "mcp.test",
                                          "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    # The 401 a token-less call from the allowed origin gets is readable by the page (CORS headers on errors).
    unauthorized = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              headers={"Origin": origin, "Host": "mcp.test"})
    assert unauthorized.status_code == 401 and unauthorized.headers["access-control-allow-origin"] == origin
