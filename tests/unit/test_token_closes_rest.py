"""With an access token configured, creating a session over REST needs it too; browsers stay open."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from chalice_app.application import create_app
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import memory_service

TOKEN = "t" * 40


def post(client: Client, operation: str, body: dict[str, Any], **headers: str) -> Any:
    return client.http.post(f"/api/{operation}", body=json.dumps(body),
                            headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [(None, "Bearer"), *((sent, 'Bearer error="invalid_token"') for sent in
                         ("Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer ünïcode"))],
)
def test_creating_a_session_without_the_token_is_refused_and_creates_nothing(
        authorization: str | None, challenge: str) -> None:
    service = memory_service(Settings(mcp_token=TOKEN))
    headers = {} if authorization is None else {"Authorization": authorization}
    with Client(create_app(lambda: service)) as client:
        answer = post(client, "webpage_create_session", {"session_id": "closed"}, **headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == challenge
    assert json.loads(answer.body)["error"] == "unauthorized"
    assert service.store.get_session("closed") is None


def test_with_the_token_it_works_and_browsers_need_none() -> None:
    service = memory_service(Settings(mcp_token=TOKEN))
    with Client(create_app(lambda: service)) as client:
        created = post(client, "webpage_create_session", {"session_id": "open"}, Authorization=f"Bearer {TOKEN}")
        assert created.status_code == 200, created.body
        # The viewers of a session have no token: joining and reading the status stay open.
        joined = post(client, "webpage_join_session", {"session_id": "open"}, **{"X-PBFM-Tab": "t1"})
        assert joined.status_code == 200, joined.body
        status = post(client, "webpage_get_session_status", {"session_id": "open"})
        assert status.status_code == 200, status.body


def test_without_a_configured_token_rest_creation_is_open() -> None:
    service = memory_service(Settings(mcp_token=None))
    with Client(create_app(lambda: service)) as client:
        assert post(client, "webpage_create_session", {"session_id": "anyone"}).status_code == 200
