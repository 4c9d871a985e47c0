"""A re-created session id is a new incarnation: nothing of the earlier one collides or shows.

The product's reproduction (issue #12): create ``ex65``, send 65 updates, let it expire, create it
again. Before incarnations, the next send failed ("Too many concurrent writers") and every join
answered 409, because the expired events still held their numbers. Here on the in-memory backends
(held to DynamoDB's behaviour by ``tests/contract``) and a ``ManualClock``, through the REST and MCP
adapters of the real app; ``tests/integration/test_incarnations.py`` runs it on the local stack.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from chalice.test import Client

from chalice_app.application import create_app
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import ManualClock, memory_service

TTL = 20
SETTINGS = Settings(session_ttl_s=TTL, price_source="simulated", snapshot_every=25)
SID = "ex65"
_ids = itertools.count(1)


def rest(client: Client, operation: str, cookie: str = "", **body: Any) -> tuple[int, dict[str, Any], str]:
    headers = {"Content-Type": "application/json", "X-PBFM-Tab": "t", **({"Cookie": cookie} if cookie else {})}
    response = client.http.post(f"/api/{operation}", body=json.dumps({"session_id": SID, **body}), headers=headers)
    set_cookie = {k.lower(): v for k, v in response.headers.items()}.get("set-cookie", "")
    return response.status_code, json.loads(response.body), str(set_cookie).split(";")[0]


def mcp(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    params = {"name": tool, "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": "tools/call", "params": params}
    response = client.http.post("/mcp", body=json.dumps(body), headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18"})
    result = json.loads(response.body)["result"]
    assert not result.get("isError"), result
    return dict(result["structuredContent"])


def test_the_spec_reproduction_a_session_recreated_after_expiry_works_at_once() -> None:
    clock = ManualClock()
    service = memory_service(SETTINGS, clock)
    with Client(create_app(lambda: service)) as client:
        assert mcp(client, "webpage_create_session", session_id=SID)["created"] is True
        status, first, cookie = rest(client, "webpage_join_session")
        assert status == 200
        for _ in range(65):
            last = mcp(client, "webpage_update_hash_price_display", session_id=SID)["seq"]
        assert last > 65
        old_queues = service.queues.names(SID, first["client_id"])

        clock.advance(TTL + 2)
        assert mcp(client, "webpage_create_session", session_id=SID)["created"] is True
        # The next send works and the log starts at 1.
        assert mcp(client, "webpage_update_hash_price_display", session_id=SID)["seq"] == 1

        # The page still polling with its old cookie is told to join again (its queues are gone) ...
        status, answer, _ = rest(client, "webpage_poll_queue", cookie, queue="live", wait_seconds=0)
        assert status in (404, 410), answer
        # ... and its join works, as a new participant of the new incarnation with new queues.
        status, again, new_cookie = rest(client, "webpage_join_session", cookie)
        assert status == 200, again
        assert again["incarnation"] != first["incarnation"] and again["client_id"] != first["client_id"]
        assert service.queues.names(SID, again["client_id"]) != old_queues
        assert new_cookie and new_cookie != cookie
        assert again["role"] == "master" and not again["resumed"]
        # The same browser id: a second join with the re-issued cookie resumes.
        status, resumed, _ = rest(client, "webpage_join_session", new_cookie)
        assert status == 200 and resumed["resumed"] and resumed["client_id"] == again["client_id"]

        events = service.store.events_after(SID, 0)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert {e.incarnation for e in events} == {again["incarnation"]}
        people = mcp(client, "webpage_get_session_participants", session_id=SID)["participants"]
        assert [p["client_id"] for p in people] == [again["client_id"]]


def test_an_ended_session_can_be_created_again_at_once_and_shows_nothing_of_before() -> None:
    clock = ManualClock()
    service = memory_service(SETTINGS, clock)
    with Client(create_app(lambda: service)) as client:
        mcp(client, "webpage_create_session", session_id=SID)
        _, first, cookie = rest(client, "webpage_join_session")
        mcp(client, "webpage_update_hash_price_display", session_id=SID)
        mcp(client, "webpage_end_session", session_id=SID, reason="done")
        assert mcp(client, "webpage_create_session", session_id=SID)["created"] is True
        status, again, _ = rest(client, "webpage_join_session", cookie)
        assert status == 200 and again["incarnation"] != first["incarnation"]
        # ROLE_CHANGE and PARTICIPANTS of the new join: seq 1 and 2, nothing of before.
        assert again["last_seq"] == 2
        envelopes = [json.loads(body) for _, body in service.queues.receive(
            service.store.require_session(SID).fanout[again["client_id"]], 0, 10)]
        assert envelopes and all(e["incarnation"] == again["incarnation"] for e in envelopes)
