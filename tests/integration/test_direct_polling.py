"""The direct path end to end: pages long-poll their own SQS queues (moto behind the local AWS
gateway) with the presigned receives the real app hands out; the shipped SessionManager does it.

- In steady state no poll reaches our server (the local stack counts requests per path), and
  acknowledgements ride on the heartbeat: one call per interval per page, nothing redelivered.
- A receive presigned for one browser is refused for another's queue, when expired, or with a
  changed parameter — through the stack's own gateway, as SQS would.
- Small documents ride inline; a late joiner (by reference) ends in the very same state.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from chalice_app.aws import build_clients
from chalice_app.receive_urls import ReceiveUrlSigner
from pbfm_tooling.http_transport import HttpxTransport
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner
from tests.browser.stack_client import mcp_call, rest_call
from web_py.sqs_xml import SqsResponseError, parse_error, parse_receive_response

pytestmark = pytest.mark.slow

LAYOUT = {"title": "Direct", "blocks": [{"kind": "price_card"}, {"kind": "text", "text": "hello", "style": "note"}]}


def publish_prices(stack: LocalStack, session_id: str, count: int) -> int:
    seq = 0
    for _ in range(count):
        seq = mcp_call(stack.base_url, "webpage_update_hash_price_display", session_id=session_id)["seq"]
    return seq


def test_steady_state_receives_straight_from_sqs(stack: LocalStack, session_id: str) -> None:
    # The stack is shared: another test's pages may have polled through our server before this one.
    polls_before = stack.requests["/api/webpage_poll_queue"]
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    with PageRunner(stack.base_url) as pages:
        tabs = [pages.open(session_id) for _ in range(2)]
        for tab in tabs:
            tab.catch_up(publish_prices(stack, session_id, 1))
        fetched_before = [tab.manager.metrics.documents_fetched for tab in tabs]
        seq = publish_prices(stack, session_id, 5)
        seq = mcp_call(stack.base_url, "webpage_send_to_browsers", session_id=session_id, content=LAYOUT)["seq"]
        for tab in tabs:
            tab.catch_up(seq)
        assert stack.requests["/api/webpage_poll_queue"] == polls_before  # not once, from joining on
        for tab, fetched in zip(tabs, fetched_before, strict=True):
            metrics = tab.manager.metrics
            # Every poll went to SQS; one more may be in flight (counted when it starts, polls when it ends).
            assert metrics.direct_polls > 0 and metrics.polls <= metrics.direct_polls <= metrics.polls + 1
            # Prices and the layout came inline: no S3 fetch for any of them.
            assert metrics.documents_fetched == fetched and metrics.inline_documents >= 6
            assert tab.manager.state.layout is not None
        # Acknowledgements reach us on the heartbeats only (see the next test).
        assert stack.requests["/api/webpage_delete_message"] == 0
        assert sum(tab.manager.metrics.ack_calls for tab in tabs) > 0


class Recording:
    """A tab's transport that notes when each REST call left and the receipt handles it carried."""

    def __init__(self, inner: HttpxTransport) -> None:
        self.inner = inner
        self.calls: list[tuple[float, str, int]] = []  # (monotonic time, operation, handles acknowledged)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        acks = body.get("acks") or {}
        self.calls.append((time.monotonic(), path.removeprefix("/api/"), sum(map(len, acks.values()))))
        return await self.inner.post(path, body)

    async def get_json(self, url: str) -> tuple[int, Any]:
        return await self.inner.get_json(url)

    async def get_text(self, url: str) -> tuple[int, str | None]:
        return await self.inner.get_text(url)


def test_steady_state_one_acknowledging_call_per_interval_and_nothing_redelivered(
        stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    settings = stack.service.settings
    interval = 3.0  # long enough for a burst of updates to land within one interval
    # Liveness scaled with it, as the defaults are: with the shared stack's 3 s timeout a beat late
    # by a moment on a busy machine marked a tab away or failed the master over, and the news of it
    # was still waiting for its acknowledging beat when the queues were read.
    stack.service.settings = dataclasses.replace(settings, heartbeat_interval_s=interval,
                                                 heartbeat_timeout_s=3 * interval, stale_after_s=10 * interval)
    recorders: list[Recording] = []

    def recording(transport: HttpxTransport) -> Recording:
        recorders.append(Recording(transport))
        return recorders[-1]

    try:
        with PageRunner(stack.base_url) as pages:
            tabs = [pages.open(session_id, wrap=recording) for _ in range(2)]
            for tab in tabs:
                tab.catch_up(publish_prices(stack, session_id, 1))
            time.sleep(interval + 0.5)  # joins announced, every history acknowledged: steady state
            duplicates = [tab.manager.processor.stats.duplicates for tab in tabs]
            started = time.monotonic()
            updates = 8
            seq = publish_prices(stack, session_id, updates)
            for tab in tabs:
                tab.catch_up(seq)
            assert all(tab.manager.metrics.applied_from_live >= updates for tab in tabs)
            time.sleep(2 * interval + 0.5)  # the beats that carry the burst's handles
            ended = time.monotonic()
            for tab, recorder, dropped in zip(tabs, recorders, duplicates, strict=True):
                calls = [c for c in recorder.calls if started <= c[0] <= ended]
                # Nothing but heartbeats reached our server from this page: no ack call of its own.
                assert {operation for _, operation, _ in calls} == {"webpage_send_heartbeat"}, calls
                beats = [at for at, _, _ in calls]
                assert len(beats) <= (ended - started) / interval + 1, calls
                assert all(b - a >= 0.9 * interval for a, b in itertools.pairwise(beats)), calls
                # Every update acknowledged by those beats; none handed out twice meanwhile.
                assert sum(handles for _, _, handles in calls) >= updates, calls
                assert tab.manager.processor.stats.duplicates == dropped
                assert tab.manager.metrics.repairs == 0 or tab.manager.processor.stats.gaps == 0
                record = stack.service.store.get_client(session_id, tab.client_id or "")
                since = [(e.seq, e.type) for e in stack.service.store.events_after(session_id, seq)]
                assert record is not None and in_flight(stack, record.live_queue_url) == 0, since
    finally:
        stack.service.settings = settings


def in_flight(stack: LocalStack, queue_url: str) -> int:
    """Messages received and neither deleted nor visible again, read from moto itself. A page parked
    in a long-poll holds none; so every handle it received was deleted."""
    sqs = build_clients(stack.settings).sqs
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def test_the_server_poll_remains_as_the_opt_in_fallback(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    with PageRunner(stack.base_url, poll_mode="server") as pages:
        tab = pages.open(session_id)
        tab.catch_up(publish_prices(stack, session_id, 3))
        assert tab.manager.metrics.direct_polls == 0 and stack.requests["/api/webpage_poll_queue"] > 0
    page = httpx.get(f"{stack.page_url(session_id)}?poll=server")
    assert 'data-poll="server"' in page.text
    assert 'data-poll="direct"' in httpx.get(stack.page_url(session_id)).text


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, value if k == name else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _refusal(url: str) -> SqsResponseError:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 403, (response.status_code, response.text[:300])
    return parse_error(response.text)


def test_presigned_receives_are_refused_for_another_queue_expired_or_changed(stack: LocalStack,
                                                                             session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    with PageRunner(stack.base_url) as pages:
        mine, other = pages.open(session_id), pages.open(session_id)
        mine.join()
        other.join()
        answer = mine.call("webpage_send_heartbeat")
        live_url = answer["receive_urls"]["live"]["url"]
        assert urlsplit(live_url).netloc == urlsplit(stack.gateway_url).netloc
        # As handed out, a receive works (the history queue holds the join's history: no wait).
        history = httpx.get(answer["receive_urls"]["history"]["url"], timeout=30)
        assert history.status_code == 200
        parse_receive_response(history.text)

        other_record = stack.service.store.get_client(session_id, other.client_id or "")
        assert other_record is not None
        other_path = urlsplit(other_record.live_queue_url).path
        swapped = urlunsplit(urlsplit(live_url)._replace(path=other_path))
        assert _refusal(swapped).needs_fresh_url
        assert _refusal(_with_param(live_url, "WaitTimeSeconds", "0")).needs_fresh_url
        assert _refusal(_with_param(live_url, "MaxNumberOfMessages", "1")).needs_fresh_url

        signer = stack.service.receive_signer
        assert signer is not None
        old = ReceiveUrlSigner(signer._credentials, region=signer.region, endpoint=signer.endpoint,
                               lifetime_s=60, clock=lambda: 1_000_000_000.0)
        mine_record = stack.service.store.get_client(session_id, mine.client_id or "")
        assert mine_record is not None
        expired = old.sign(mine_record.live_queue_url, mine_record.history_queue_url).live.url
        refusal = _refusal(expired)
        assert refusal.needs_fresh_url and "expired" in refusal.message.lower()


def test_inline_and_by_reference_delivery_end_in_the_same_state(stack: LocalStack, session_id: str) -> None:
    rest_call(stack.base_url, "webpage_create_session", session_id=session_id)
    settings = stack.service.settings
    with PageRunner(stack.base_url) as pages:
        live = pages.open(session_id)
        live.catch_up(publish_prices(stack, session_id, 1))
        fetched = live.manager.metrics.documents_fetched
        publish_prices(stack, session_id, 3)
        mcp_call(stack.base_url, "webpage_send_to_browsers", session_id=session_id, content=LAYOUT)
        seq = publish_prices(stack, session_id, 1)
        live.catch_up(seq)
        assert live.manager.metrics.documents_fetched == fetched
        inline = live.manager.metrics.inline_documents
        assert inline >= 5
        # Inlining off (threshold 0): the same kinds of events now come by reference.
        stack.service.settings = dataclasses.replace(settings, inline_document_bytes=0)
        try:
            mcp_call(stack.base_url, "webpage_send_to_browsers", session_id=session_id, content=LAYOUT)
            seq = publish_prices(stack, session_id, 2)
            live.catch_up(seq)
        finally:
            stack.service.settings = settings
        assert live.manager.metrics.inline_documents == inline
        assert live.manager.metrics.documents_fetched >= fetched + 3
        # A late joiner reads the whole history by reference (snapshot + tail from S3).
        late = pages.open(session_id)
        late.join()  # announces the newcomer (from a heartbeat, soon): one more event for both pages
        while True:
            seq = rest_call(stack.base_url, "webpage_get_session_status", session_id=session_id)["last_seq"]
            late.catch_up(seq)
            live.catch_up(seq)
            if late.last_seq == live.last_seq == seq:
                break
        assert late.manager.metrics.inline_documents == 0 and late.manager.metrics.documents_fetched > 0
        assert late.manager.state == live.manager.state
