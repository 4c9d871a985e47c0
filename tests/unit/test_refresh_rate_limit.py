"""The master's price refresh is rate-limited per session, and the page shows the cooldown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from chalice.test import Client

from chalice_app.application import create_app
from chalice_app.errors import Forbidden, TooManyRequests
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import ManualClock, memory_service
from web_py.messages import MessageType
from web_py.render import View, render_page
from web_py.session_manager import SessionManager

SID = "refresh"


def test_one_refresh_per_cooldown_and_observers_still_get_403() -> None:
    clock = ManualClock()
    service = memory_service(Settings(refresh_cooldown_s=5, price_source="simulated"), clock)
    service.create_session(SID, None)
    master = service.join(SID, None).client.client_id
    clock.advance(1)
    observer = service.join(SID, None).client.client_id
    service.claim_price_refresh(SID, master)
    clock.advance(4.9)
    with pytest.raises(TooManyRequests) as refused:
        service.claim_price_refresh(SID, master)
    assert refused.value.headers == {"Retry-After": "5"} and refused.value.status == 429
    with pytest.raises(Forbidden):
        service.claim_price_refresh(SID, observer)
    clock.advance(0.2)
    service.claim_price_refresh(SID, master)


def test_a_burst_of_refreshes_over_rest_publishes_one_price() -> None:
    service = memory_service(Settings(refresh_cooldown_s=5, price_source="simulated"))
    service.create_session(SID, None)
    headers = {"Content-Type": "application/json", "X-PBFM-Tab": "t"}
    with Client(create_app(lambda: service)) as client:
        joined = client.http.post("/api/webpage_join_session", body=json.dumps({"session_id": SID}), headers=headers)
        cookie = joined.headers["Set-Cookie"].split(";")[0]
        statuses = [
            client.http.post("/api/webpage_request_price_refresh", body=json.dumps({"session_id": SID}),
                             headers={**headers, "Cookie": cookie}).status_code
            for _ in range(100)
        ]
    assert statuses.count(200) == 1 and statuses.count(429) == 99
    prices = [e for e in service.store.events_after(SID, 0) if e.type == MessageType.PRICE_UPDATE]
    assert len(prices) == 1


class RefusingHttp:
    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return 429, {"error": "too_many_requests", "message": "too soon", "details": {"retry_after_s": 3}}

    async def get_json(self, url: str) -> tuple[int, Any]:
        raise AssertionError("no document is fetched")


def test_the_page_disables_the_button_for_the_cooldown_and_says_why() -> None:
    views: list[View] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        views.append(manager.view)

    manager = SessionManager(SID, RefusingHttp(), sleep=sleep)
    manager.view = View(client_id="c", connection="live", server_role="master")
    assert asyncio.run(manager.request_price_refresh()) is False
    during = views[-1]
    assert slept == [3.0] and during.refresh_cooling and "again in 3 s" in (during.notice or "")
    html = render_page(manager.state, during)
    assert 'data-testid="refresh" disabled' in html and "Refreshed just now" in html
    assert not manager.view.refresh_cooling and manager.view.notice is None
