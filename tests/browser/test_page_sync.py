"""The page in real Chromium against the real local stack (moto server + Chalice app over HTTP), and
its route on the static site alone.

Every test also asserts (browsers fixture) that no request left 127.0.0.1.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page

from chalice_app.aws import build_clients
from pbfm_tooling.local_stack import LocalStack
from tests.browser.harness import (
    Browsers,
    Shown,
    shown,
    wait_for_live,
    wait_for_python,
    wait_for_role,
    wait_for_seq,
)
from tests.browser.stack_client import mcp_call, rest_call

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def start(stack: LocalStack, session_id: str) -> None:
    """A new session with its first price."""
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    mcp_call(stack.base_url, "webpage_update_hash_price_display", session_id=session_id)


def update_price(stack: LocalStack, session_id: str) -> tuple[int, str]:
    result = mcp_call(stack.base_url, "webpage_update_hash_price_display", session_id=session_id)
    return int(result["seq"]), str(result["price"]["display_price"])


# More than the tests' snapshot interval (PBFM_SNAPSHOT_EVERY=25): the late tab joins from a snapshot.
LATE_AFTER = 30


def assert_in_order_once(page: Page) -> None:
    facts = shown(page)
    assert facts.applied_twice == 0
    seqs = facts.applied_seqs
    assert list(seqs) == sorted(set(seqs)), f"applied out of order or twice: {seqs}"


def test_one_session_in_chromium_from_the_first_boot_to_the_last_page_leaving(
        browsers: Browsers, stack: LocalStack, session_id: str) -> None:
    """One session's life in real pages. A first page boots from our own server and becomes master: the
    price by reference, polls straight from SQS, its buttons. A second browser joins and every update
    shows the same in both; AI content that tries to run is shown as text. 30 events later a second tab
    of the first browser joins as a participant of its own, from a snapshot, and then reloads without
    losing its identity or an event. The master closes and an observer takes over within twice the
    heartbeat timeout; the AI hands control on. Last, a page leaving acknowledges what it applied.

    One story rather than separate tests: it loads a page four times, and each boot of Pyodide costs
    ~5 core-seconds.
    """
    start(stack, session_id)
    prices = 1
    first_browser = browsers.person()
    # The plain HTML loading state is there before any Python runs: seen as the document is parsed
    # (once loaded, Python may already have replaced it: its boot takes under a second).
    first_browser.add_init_script(
        "document.addEventListener('DOMContentLoaded', () => {"
        " window.bootProgressWhenParsed = document.getElementById('boot-progress') !== null; })")
    began = time.monotonic()
    first = browsers.open(stack.page_url(session_id), first_browser)
    assert first.evaluate("window.bootProgressWhenParsed") is True
    print(f"python ready {wait_for_python(first):.1f} s after load")
    wait_for_live(first)
    # Pyodide came from our own server (the browsers fixture: no request left 127.0.0.1).
    assert any("/vendor/pyodide/" in url and url.endswith("/pyodide.asm.wasm") for url in browsers.requests)
    first.wait_for_selector('[data-testid="price"]:not([data-price=""])')
    print(f"boot to first price: {time.monotonic() - began:.1f} s")
    print(f"first price rendered {first.get_attribute('#app', 'data-first-price-ms')} ms after navigation start")
    the_first_page_is_master_and_reads_aws_directly(browsers, stack, session_id, first)
    only_the_masters_button_makes_a_price(browsers, first)
    prices += 1

    second = browsers.open(stack.page_url(session_id))
    wait_for_live(second)
    pages = [first, second]
    # Read once both show the same sequence: on a loaded machine a Pyodide boot can delay the first
    # master's heartbeats past the timeout, and a page shows its demotion only once it has applied
    # the ROLE_CHANGE.
    assert sorted(f.role for f in settled(stack, session_id, *pages)) == ["master", "observer"]
    fetched = [shown(page).documents_fetched for page in pages]
    timings = []
    for _ in range(5):
        sent = time.monotonic()
        seq, price = update_price(stack, session_id)
        for page in pages:
            wait_for_seq(page, seq, timeout_ms=20_000)
        timings.append(time.monotonic() - sent)
        # A coalesced participant list may follow the price: compare once the pages agree.
        facts = settled(stack, session_id, *pages)
        assert len({f.last_seq for f in facts}) == 1 and facts[0].last_seq >= seq
        assert {f.price for f in facts} == {price}
        assert len({f.sparkline for f in facts}) == 1
    prices += 5
    print("MCP update -> both browsers show it: " + ", ".join(f"{t * 1000:.0f} ms" for t in timings))
    # The live prices rode inline in their messages: no page fetched another document for them.
    assert [shown(page).documents_fetched for page in pages] == fetched
    for page in pages:
        assert_in_order_once(page)
    assert len({shown(p).participants.replace(" (you)", "") for p in pages}) == 1
    hostile_content_is_shown_as_text_and_never_runs(pages, stack, session_id)

    # LATE_AFTER events on (a snapshot boundary crossed), a second tab of the first browser.
    for _ in range(LATE_AFTER):
        seq, _price = update_price(stack, session_id)
    prices += LATE_AFTER
    began = time.monotonic()
    late = browsers.open(stack.page_url(session_id), first_browser)
    wait_for_seq(late, seq)
    print(f"late joiner after {LATE_AFTER} events: same state in {time.monotonic() - began:.1f} s (incl. boot)")
    pages.append(late)
    facts = settled(stack, session_id, *pages)  # a coalesced participant list may follow the join
    assert len({(f.last_seq, f.price, f.sparkline) for f in facts}) == 1
    assert f'data-points="{prices}"' in facts[-1].sparkline
    # Two tabs of one browser are two participants: each has queues of its own (they no longer share,
    # and steal from, one pair).
    people = rest_call(stack.base_url, "webpage_get_session_status", session_id=session_id)["participants"]
    assert len(people) == 3 and facts[0].client_id != facts[-1].client_id
    one_master_and_failovers_logged(stack, session_id, facts)
    for page in pages:
        assert_in_order_once(page)
    # The late joiner started from a snapshot: it applied fewer than the LATE_AFTER events itself
    # (from the first event on it would have applied them all, and the ones before).
    assert len(facts[-1].applied_seqs) < LATE_AFTER

    # A reload keeps the tab's identity and resumes from its saved state; events published while
    # it reloads are not lost.
    before = shown(late)
    update_price(stack, session_id)
    late.reload()
    seq, price = update_price(stack, session_id)
    wait_for_seq(late, seq)
    after = shown(late)
    assert after.client_id == before.client_id
    assert after.price == price
    assert after.restored_seq >= before.last_seq
    assert min(after.applied_seqs) > before.last_seq
    assert_in_order_once(late)
    # Still one master. (Which page it is may change: a tab is silent while it reloads, and on a
    # loaded machine that silence, or another's, can outlast the timeout.)
    one_master_and_failovers_logged(stack, session_id, settled(stack, session_id, *pages))

    # The master closes (only its tab: another tab of that browser may live on): an observer is
    # promoted within twice the heartbeat timeout.
    roles = [shown(page).role for page in pages]
    master = pages[roles.index("master")]
    observers = [page for page in pages if page is not master]
    timeout_s = stack.settings.heartbeat_timeout_s
    closed = time.monotonic()
    master.close()
    new_master = wait_for_any_role(browsers, observers, "master", int(2 * timeout_s * 1000))
    print(f"failover: new master shown {time.monotonic() - closed:.1f} s after the master closed")
    other = next(page for page in observers if page is not new_master)
    wait_for_role(other, "observer")
    facts = settled(stack, session_id, new_master, other)
    assert len({f.participants.replace(" (you)", "") for f in facts}) == 1

    # Transfer of control through MCP: the other observer becomes master everywhere.
    mcp_call(stack.base_url, "webpage_transfer_control_to_observer", session_id=session_id,
             client_id=shown(other).client_id)
    wait_for_role(other, "master", timeout_ms=10_000)
    wait_for_role(new_master, "observer", timeout_ms=10_000)
    assert rest_call_status(stack, new_master) == 403

    leaving_the_page_acknowledges_what_it_applied(new_master, stack, session_id)
    # Four loads of the page, not one violation of our Content-Security-Policy.
    assert [line for line in browsers.console if "Content Security Policy" in line] == []


def the_first_page_is_master_and_reads_aws_directly(browsers: Browsers, stack: LocalStack, session_id: str,
                                                    page: Page) -> None:
    status = rest_call(stack.base_url, "webpage_get_session_status", session_id=session_id)
    # (The history's acknowledging heartbeat may just have announced the roster: an event in flight.)
    wait_for_seq(page, status["last_seq"])
    facts = shown(page)
    assert facts.role == "master"
    assert facts.connection == "live"
    assert facts.last_seq == status["last_seq"]
    assert facts.price.startswith("0.")
    # The price document came by reference from S3 (moto), through a presigned URL.
    bucket = stack.settings.bucket_name
    s3_gets = [u for u in browsers.requests if f"/{bucket}/sessions/{session_id}/prices/" in u]
    assert s3_gets and all("X-Amz-Signature=" in u for u in s3_gets)
    assert facts.documents_fetched >= 1
    # The page long-polls its own queues straight from SQS (the gateway), never through our server.
    receives = [u for u in browsers.requests if "Action=ReceiveMessage" in u]
    assert receives and all("X-Amz-Signature=" in u and u.startswith(stack.gateway_url) for u in receives)
    assert not [u for u in browsers.requests if "/api/webpage_poll_queue" in u]


def only_the_masters_button_makes_a_price(browsers: Browsers, page: Page) -> None:
    """On the master's page: a click that misses the button is ignored quietly; the button makes a price."""
    last_seq = shown(page).last_seq
    # Nothing went to stderr (PyScript would show it as a red .py-error banner) and no exception
    # reached the page.
    page.click('[data-testid="participants"]')
    page.wait_for_timeout(200)
    assert page.locator(".py-error").count() == 0
    assert not [line for line in browsers.console if line.startswith(("pageerror", "error"))], browsers.console
    page.click('[data-testid="refresh"]')
    wait_for_seq(page, last_seq + 1, timeout_ms=20_000)
    assert_in_order_once(page)


def one_master_and_failovers_logged(stack: LocalStack, session_id: str, facts: list[Shown]) -> None:
    """Exactly one page shows master. The first page keeps the role unless its heartbeats came late past
    the timeout (a loaded machine) and another page found it silent: then the log says so."""
    assert [f.role for f in facts].count("master") == 1
    if facts[0].role != "master":
        assert any(e.type == "ROLE_CHANGE" and (e.payload or {}).get("reason") == "failover"
                   for e in stack.service.store.events_after(session_id, 0))


def settled(stack: LocalStack, session_id: str, *pages: Page) -> list[Shown]:
    """What the pages show once all of them are at the server's last sequence (events keep coming)."""
    for _ in range(50):
        last = rest_call(stack.base_url, "webpage_get_session_status", session_id=session_id)["last_seq"]
        for page in pages:
            wait_for_seq(page, last, timeout_ms=20_000)
        facts = [shown(page) for page in pages]
        if {f.last_seq for f in facts} == {last}:
            return facts
    raise AssertionError("the pages never settled on one sequence")


def wait_for_any_role(browsers: Browsers, pages: list[Page], role: str, timeout_ms: int) -> Page:
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        for page in pages:
            if shown(page).role == role:
                return page
        time.sleep(0.1)
    raise AssertionError(f"no page became {role} within {timeout_ms} ms: {[shown(p) for p in pages]}")


def rest_call_status(stack: LocalStack, page: Page) -> int:
    """An observer calling the master-only operation anyway (its own cookie and tab id, from the page)."""
    return int(
        page.evaluate(
            """async (sid) => (await fetch('/api/webpage_request_price_refresh', {method: 'POST',
                 headers: {'Content-Type': 'application/json', 'X-PBFM-Tab': sessionStorage.getItem('pbfm-tab')},
                 body: JSON.stringify({session_id: sid}), credentials: 'same-origin'})).status""",
            page.evaluate("document.getElementById('app').dataset.sessionId"),
        )
    )


def hostile_content_is_shown_as_text_and_never_runs(pages: list[Page], stack: LocalStack, session_id: str) -> None:
    script = "<script>window.pwned = 'script'</script>"
    image = "<img src=x onerror=\"window.pwned = 'img'\">"
    content = {
        "title": image,
        "blocks": [
            {"kind": "text", "text": script, "style": "heading"},
            {"kind": "text", "text": image, "style": "paragraph"},
            {"kind": "key_value", "title": script, "rows": [{"key": image, "value": script}]},
            {"kind": "chart", "title": image, "points": [1, 2, 3], "labels": [script, "b", image]},
            {"kind": "price_card"},
        ],
    }
    seq = mcp_call(stack.base_url, "webpage_send_to_browsers", session_id=session_id, content=content)["seq"]
    for page in pages:
        wait_for_seq(page, seq)
    pages[0].wait_for_timeout(500)  # give a (hypothetical) onerror time to fire
    for page in pages:
        assert page.evaluate("window.pwned") is None
        assert page.locator("#app img, #app script").count() == 0
        text = page.inner_text("#app")
        assert script in text and image in text


def leaving_the_page_acknowledges_what_it_applied(page: Page, stack: LocalStack, session_id: str) -> None:
    client = stack.service.store.get_client(session_id, shown(page).client_id)
    assert client is not None
    sqs = build_clients(stack.settings).sqs

    def in_flight() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=client.live_queue_url,
                                              AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])

    # Heartbeats fail for a moment, so what the page applies stays unacknowledged (pending).
    page.route("**/api/webpage_send_heartbeat", lambda route: route.abort())
    seq = 0
    for _ in range(3):
        seq, _price = update_price(stack, session_id)
    wait_for_seq(page, seq)
    assert in_flight() >= 3  # the three prices (and any announcement since)
    page.unroute("**/api/webpage_send_heartbeat")
    page.goto("about:blank")
    # The parting heartbeat (fetch keepalive on pagehide) deleted them; without it they would stay
    # in flight until the visibility timeout and then be handed out again.
    deadline = time.monotonic() + 10
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_flight() == 0


def test_bad_session_id_is_a_404_page(browsers: Browsers, static_server: str) -> None:
    page = browsers.person().new_page()
    response = page.goto(f"{static_server}/session/not%20valid%3Cb%3E")
    assert response is not None and response.status == 404
    assert page.locator("b").count() == 0
