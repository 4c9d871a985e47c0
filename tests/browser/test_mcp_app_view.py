"""The live page inside a chat: the MCP App view in a test host built on the extension's own AppBridge.

The host (tests/browser/app_host: the npm AppBridge and the TypeScript MCP client, bundled with
esbuild) calls our tools over real MCP, reads the ``ui://`` view and renders it through a sandbox
proxy on a second origin, which sets the CSP header from the view's ``_meta.ui.csp`` as the
reference host does. Everything runs against a real local stack in real Chromium.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Frame, Page, Request, Response

from chalice_app import view_tokens
from pbfm_tooling.local_stack import LocalStack
from tests.browser.app_host.server import AppHost
from tests.browser.harness import (
    BOOT_TIMEOUT_MS,
    POLL_MS,
    Browsers,
    shown,
    wait_for_live,
    wait_for_python,
    wait_for_seq,
)
from tests.conftest import TEST_OVERRIDES

pytestmark = [pytest.mark.browser, pytest.mark.slow]


TOKEN_HEADER = "x-pbfm-view-token"
# Long enough for a view's boot on a loaded machine. No test waits it out: the token of an old grant
# is signed back-dated (``aged_token``), the state the clock would produce.
TOKEN_LIFETIME_S = 60


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, AppHost]]:
    started = {policy: AppHost(policy).start() for policy in ("reference", "strict")}
    yield started
    for host in started.values():
        host.stop()


@pytest.fixture(scope="module")
def view_stack(hosts: dict[str, AppHost]) -> Iterator[LocalStack]:
    origins = ",".join(host.sandbox_origin for host in hosts.values())
    overrides = {**TEST_OVERRIDES, "PBFM_VIEW_ORIGINS": origins, "PBFM_VIEW_TOKEN_LIFETIME": str(TOKEN_LIFETIME_S)}
    with LocalStack(overrides=overrides) as running:
        yield running


class ViewRequests:
    """What the view's frame (the sandbox proxy's inner iframe) asked for, with its headers."""

    def __init__(self, page: Page) -> None:
        self.seen: list[Request] = []
        self.renewals: list[str] = []  # tokens our answers handed the view (a response header)
        self.refusals: list[str] = []
        page.on("request", self._record)
        page.on("response", self._answered)

    @staticmethod
    def _in_view(frame: Frame) -> bool:
        return frame.parent_frame is not None and frame.parent_frame.parent_frame is not None

    def _record(self, request: Request) -> None:
        if self._in_view(request.frame):
            self.seen.append(request)

    def _answered(self, response: Response) -> None:
        if not self._in_view(response.frame):
            return
        renewed = response.headers.get(TOKEN_HEADER)
        if renewed:
            self.renewals.append(renewed)
        if response.status == 401:
            self.refusals.append(f"{response.url}: {response.text()}")

    def origins(self) -> set[str]:
        return {f"{urlsplit(r.url).scheme}://{urlsplit(r.url).netloc}" for r in self.seen
                if urlsplit(r.url).scheme in ("http", "https")}

    def tokens(self) -> list[str]:
        return [r.headers[TOKEN_HEADER] for r in self.seen if TOKEN_HEADER in r.headers]


def open_host(browsers: Browsers, host: AppHost, stack: LocalStack) -> tuple[Page, ViewRequests]:
    page = browsers.person().new_page()
    page.on("console", lambda msg: browsers.console.append(f"host {msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: browsers.console.append(f"host pageerror: {exc}"))
    requests = ViewRequests(page)
    page.goto(host.host_url + "/")
    page.wait_for_selector("html[data-host=ready]", state="attached")
    page.evaluate("url => window.pbfmHost.connect(url)", stack.mcp_url)
    return page, requests


def show(page: Page, host: AppHost, tool: str, arguments: dict[str, Any], grant_token: str | None = None
         ) -> dict[str, Any]:
    """The model's tool call, its result shown in a view (with ``grant_token`` in the grant, if given)."""
    return dict(page.evaluate("([tool, args, sandbox, token]) => window.pbfmHost.show(tool, args, sandbox, token)",
                              [tool, arguments, host.sandbox_url, grant_token]))


def aged_token(stack: LocalStack, session_id: str, age_s: float) -> str:
    """A view token as this stack signs it, issued ``age_s`` seconds ago."""
    return view_tokens.issue(stack.settings.cookie_secret, session_id, now=time.time() - age_s,
                             lifetime_s=stack.settings.view_token_lifetime_s).value


def host_call(page: Page, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The model's own tool call, through the host's MCP client."""
    result = page.evaluate("([tool, args]) => window.pbfmHost.callTool(tool, args)", [tool, arguments])
    assert not result.get("isError"), result
    return dict(result["structuredContent"])


def view_frame(page: Page, index: int = 0) -> Frame:
    """The inner iframe of the index-th view (host page > sandbox proxy > view)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames:
            proxy = frame.parent_frame
            if proxy is not None and proxy.parent_frame == page.main_frame \
                    and proxy.frame_element().get_attribute("id") == f"view-{index}":
                return frame
        page.wait_for_timeout(100)
    raise AssertionError("the view's frame did not appear")


def frame_shows(frame: Frame) -> dict[str, Any]:
    return dict(frame.evaluate(
        """() => {
        const root = document.getElementById("app");
        return {
          lastSeq: Number(root.dataset.lastSeq || 0),
          price: root.querySelector('[data-testid="price"]')?.dataset.price ?? "",
          role: root.querySelector('[data-testid="role"]')?.textContent ?? "",
          connection: root.dataset.connection ?? "",
          clientId: root.dataset.clientId ?? "",
          sparkline: root.querySelector('[data-testid="sparkline"]')?.innerHTML ?? "",
          blocks: root.querySelector('[data-testid="layout"]')?.innerHTML ?? "",
        };
    }"""))


def settle(stack: LocalStack, session_id: str, frame: Frame, *pages: Page) -> tuple[dict[str, Any], list[Any]]:
    """Once the view and the pages all show the server's last sequence (a participant list may
    follow a price), what each shows."""
    deadline = time.monotonic() + 20
    while True:
        last = stack.service.store.require_session(session_id).seq
        seen = frame_shows(frame)
        facts = [shown(p) for p in pages]
        if (seen["lastSeq"] == last and all(f.last_seq == last for f in facts)) or time.monotonic() > deadline:
            return seen, facts
        time.sleep(0.2)


def test_the_view_in_a_chat_shows_what_every_browser_shows(browsers: Browsers, hosts: dict[str, AppHost],
                                                            view_stack: LocalStack) -> None:
    """Boots, joins without cookies, stays in sync, links out, keeps to its CSP, becomes master only by
    transfer, and its token opens no other session. One view for all of it: each boot of Pyodide
    costs ~5 core-seconds."""
    stack, host = view_stack, hosts["reference"]
    session_id = f"chat-{int(time.time() * 1000) % 10**8}"
    page, requests = open_host(browsers, host, stack)

    began = time.monotonic()
    shown_result = show(page, host, "webpage_create_session", {"session_id": session_id, "title": "In the chat"})
    result, csp = shown_result["result"], shown_result["csp"]
    # Hosts without MCP Apps lose nothing: the text and the absolute link are still there.
    assert result["structuredContent"]["page_url"] == stack.page_url(session_id)
    assert any(stack.page_url(session_id) in block.get("text", "") for block in result["content"])
    assert "v1." not in json.dumps(result["content"]), "the view token must stay out of model-visible text"
    frame = view_frame(page)
    frame.wait_for_selector("#app[data-python]", state="attached", timeout=BOOT_TIMEOUT_MS)
    view_python_s = time.monotonic() - began
    frame.wait_for_selector('#app[data-connection="live"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    view_live_s = time.monotonic() - began

    # Joined first, the view is still no master: the role waits for an ordinary browser.
    assert stack.service.store.require_session(session_id).master_client_id is None
    ordinary_began = time.monotonic()
    # In the host's own browser profile: its cookie for our (same-site) origin now exists, and the
    # view must still never send it.
    first = browsers.open(stack.page_url(session_id), page.context)
    page_calls: list[Request] = []
    first.on("request", lambda request: page_calls.append(request) if "/api/" in request.url else None)
    page_python_s = wait_for_python(first)
    wait_for_live(first)
    page_live_s = time.monotonic() - ordinary_began
    # The ordinary page is master, never the view. (One page beside the view: that every browser
    # shows the same as every other is tests/browser/test_page_sync.py's, and each boot of Pyodide
    # costs ~5 core-seconds.)
    seen, facts = settle(stack, session_id, frame, first)
    assert [f.role for f in facts] == ["master"] and seen["role"] == "observer"

    latencies: dict[str, list[float]] = {"view": [], "page": []}
    for _ in range(3):
        sent = time.monotonic()
        update = host_call(page, "webpage_update_hash_price_display", {"session_id": session_id})
        seq = int(update["seq"])
        frame.wait_for_function("seq => Number(document.getElementById('app').dataset.lastSeq) >= seq", arg=seq,
                                timeout=20_000, polling=POLL_MS)
        latencies["view"].append(time.monotonic() - sent)
        wait_for_seq(first, seq, timeout_ms=20_000)
        latencies["page"].append(time.monotonic() - sent)
        seen, facts = settle(stack, session_id, frame, first)
        assert {seen["lastSeq"], *(f.last_seq for f in facts)} == {seen["lastSeq"]} and seen["lastSeq"] >= seq
        assert {seen["price"], *(f.price for f in facts)} == {update["price"]["display_price"]}
        assert {seen["sparkline"], *(f.sparkline for f in facts)} == {seen["sparkline"]}
    seen = frame_shows(frame)
    assert seen["role"] == "observer" and seen["connection"] == "live"

    # The others see the view among the participants, labelled "in chat"; the server records it so.
    first.wait_for_selector(f'[data-client-id="{seen["clientId"]}"][data-in-chat]', state="attached",
                            timeout=20_000)
    assert " · in chat" in first.inner_text(f'[data-client-id="{seen["clientId"]}"]')
    client = stack.service.store.get_client(session_id, seen["clientId"])
    assert client is not None and client.in_chat

    # It resized itself, and shows the page's link (opened through the host when clicked).
    assert any(size["height"] > 150 for size in page.evaluate("window.pbfmHost.sizes()"))
    assert frame.get_attribute("#view-link", "href") == stack.page_url(session_id)
    frame.click("#view-link")
    page.wait_for_function("url => window.pbfmHost.links().includes(url)", arg=stack.page_url(session_id),
                           polling=POLL_MS)

    # Its requests stayed inside the declared domains, and reached SQS directly (no server polls).
    declared = set(csp["resourceDomains"]) | set(csp["connectDomains"])
    assert requests.origins() <= declared, requests.origins() - declared
    assert any("Action=ReceiveMessage" in r.url for r in requests.seen)
    assert not any("/api/webpage_poll_queue" in r.url for r in requests.seen)
    # No cookie ever left the view (it is identified by its token), and it never spoke MCP itself.
    # (Playwright leaves cookies out of .headers: all_headers() has them, as the page's own calls show.)
    assert any("cookie" in r.all_headers() for r in page_calls), "the page in the host's profile sent no cookie"
    assert not any("cookie" in r.all_headers() for r in requests.seen if urlsplit(r.url).path.startswith("/api/"))
    assert not any(urlsplit(r.url).path.endswith("/mcp") for r in requests.seen)
    assert host.csp_sent and "'unsafe-eval'" in host.csp_sent[-1]
    # The join bound its token to the session's incarnation (a new token in the answer), and the view
    # used that one from then on. The page takes a renewed token from any answer the same way; that
    # the server renews one past half its life is tests/functional/test_chat_view_wire.py's.
    assert requests.renewals, "the join answered no bound token"
    assert set(requests.renewals) <= set(requests.tokens()), "the view did not adopt the bound token"
    assert requests.refusals == [], requests.refusals

    # Only the AI's explicit transfer makes the view master.
    host_call(page, "webpage_transfer_control_to_observer", {"session_id": session_id, "client_id": seen["clientId"]})
    frame.wait_for_function("() => document.querySelector('[data-testid=\"role\"]')?.textContent === 'master'",
                            timeout=20_000, polling=POLL_MS)
    assert page.evaluate("window.pbfmHost.appCalls()") == []

    # Last, since it adds a participant: a token taken from the view opens no other session.
    a_token_taken_from_the_view_is_refused_for_another_session(page, requests, stack, host, session_id)

    print(f"boot: view Python {view_python_s:.1f} s / live {view_live_s:.1f} s after the tool call; "
          f"ordinary page Python {page_python_s:.1f} s / live {page_live_s:.1f} s after goto")
    print("update latency, MCP call -> shown: view " + ", ".join(f"{t * 1000:.0f} ms" for t in latencies["view"])
          + "; the page " + ", ".join(f"{t * 1000:.0f} ms" for t in latencies["page"]))


def a_token_taken_from_the_view_is_refused_for_another_session(page: Page, requests: ViewRequests, stack: LocalStack,
                                                               host: AppHost, mine: str) -> None:
    other = f"other-{int(time.time() * 1000) % 10**8}"
    host_call(page, "webpage_create_session", {"session_id": other})
    taken = requests.tokens()[-1]
    sandbox = {"Origin": host.sandbox_origin, "X-PBFM-Tab": "stolen", TOKEN_HEADER: taken}
    for operation in ("webpage_join_session", "webpage_send_heartbeat", "webpage_get_events"):
        refused = httpx.post(f"{stack.base_url}/api/{operation}", json={"session_id": other}, headers=sandbox)
        assert refused.status_code == 401, (operation, refused.text)
        assert "another session" in refused.json()["message"]
    assert stack.service.store.list_clients(other) == []
    # In its own session the same token works (so the refusal above is the session's, not the token's).
    assert httpx.post(f"{stack.base_url}/api/webpage_join_session", json={"session_id": mine},
                      headers=sandbox).status_code == 200


def test_a_view_opened_after_its_token_expired_renews_it_through_the_host(
        browsers: Browsers, hosts: dict[str, AppHost], view_stack: LocalStack) -> None:
    stack, host = view_stack, hosts["reference"]
    session_id = f"late-{int(time.time() * 1000) % 10**8}"
    page, requests = open_host(browsers, host, stack)
    # The result reaches the view after its token expired, as when a chat is reopened later.
    expired = aged_token(stack, session_id, TOKEN_LIFETIME_S + 1)
    show(page, host, "webpage_create_session", {"session_id": session_id}, grant_token=expired)
    frame = view_frame(page)
    frame.wait_for_selector('#app[data-connection="live"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    # It asked the host for the one read-only tool that carries a fresh grant, and used that.
    assert page.evaluate("window.pbfmHost.appCalls()") == ["webpage_get_page_state"]
    first, *later = requests.tokens()
    assert first == expired and later and later[-1] != first
    assert [refusal for refusal in requests.refusals if "expired" in refusal] == requests.refusals != []
    assert stack.service.store.list_clients(session_id)[0].in_chat


def test_a_host_that_forbids_eval_gets_a_clear_message_and_the_link(browsers: Browsers, hosts: dict[str, AppHost],
                                                                    view_stack: LocalStack) -> None:
    stack, host = view_stack, hosts["strict"]
    session_id = f"strict-{int(time.time() * 1000) % 10**8}"
    page, _requests = open_host(browsers, host, stack)
    show(page, host, "webpage_create_session", {"session_id": session_id})
    frame = view_frame(page)
    notice = frame.wait_for_selector('[data-testid="view-unsupported"]', timeout=30_000)
    assert notice is not None and "unsafe-eval" in notice.inner_text()
    assert frame.is_visible("#view-link")
    assert frame.get_attribute("#view-link", "href") == stack.page_url(session_id)
    assert frame.get_attribute("#app", "data-python") is None
    assert "'unsafe-eval'" not in host.csp_sent[-1]
