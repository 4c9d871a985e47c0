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
from dataclasses import replace
from typing import Any

from chalice.test import Client

from chalice_app.application import create_app
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import ManualClock, memory_service
from web_py.messages import MessageType

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
        # The new join's ROLE_CHANGE is seq 1: nothing of before (the participant list goes out later).
        assert again["last_seq"] == 1
        live_url = service.store.fanout(SID)[1][again["client_id"]]
        envelopes = [json.loads(body) for _, body in service.queues.receive(live_url, 0, 10)]
        assert envelopes and all(e["incarnation"] == again["incarnation"] for e in envelopes)


def test_a_recreated_session_inherits_no_places_participants_master_or_refresh_claim() -> None:
    clock = ManualClock()
    service = memory_service(replace(SETTINGS, max_viewers=2, refresh_cooldown_s=60), clock)
    with Client(create_app(lambda: service)) as client:
        mcp(client, "webpage_create_session", session_id=SID)
        _, first, first_cookie = rest(client, "webpage_join_session")
        _, second, _ = rest(client, "webpage_join_session")
        status, full, _ = rest(client, "webpage_join_session")
        assert status == 409 and full["error"] == "session_full", full
        assert rest(client, "webpage_request_price_refresh", first_cookie)[0] == 200  # the cooldown starts
        mcp(client, "webpage_end_session", session_id=SID, reason="done")
        assert mcp(client, "webpage_create_session", session_id=SID)["created"] is True

        # Two new places: a newcomer and the first browser (its old cookie) both get in.
        status, newcomer, newcomer_cookie = rest(client, "webpage_join_session")
        assert status == 200 and newcomer["role"] == "master", newcomer
        status, returning, _ = rest(client, "webpage_join_session", first_cookie)
        assert status == 200 and returning["role"] == "observer" and not returning["resumed"], returning
        assert returning["client_id"] not in (first["client_id"], second["client_id"])
        assert rest(client, "webpage_join_session")[0] == 409  # the new incarnation's cap holds
        people = mcp(client, "webpage_get_session_participants", session_id=SID)["participants"]
        assert {p["client_id"] for p in people} == {newcomer["client_id"], returning["client_id"]}
        assert set(service.store.fanout(SID)[1]) == {newcomer["client_id"], returning["client_id"]}
        # The old incarnation's refresh claim (a minute's cooldown) does not hold back the new master.
        status, refreshed, _ = rest(client, "webpage_request_price_refresh", newcomer_cookie)
        assert status == 200, refreshed


def test_a_publish_after_recreation_reaches_the_new_incarnations_browsers_not_the_cached_old_set() -> None:
    # The per-process fan-out cache holds the old incarnation's set at a higher version than the new
    # incarnation's counter (which starts at 0 again): it must not stand in for the new set.
    clock = ManualClock()
    service = memory_service(SETTINGS, clock)
    service.create_session(SID, None)
    old = [service.join(SID, None).client for _ in range(3)]
    assert service.publish(SID, MessageType.PARTICIPANTS, payload={"master_client_id": None,
                                                                   "participants": []}).delivered == 3
    service.end_session(SID, "done")
    service.create_session(SID, None)
    new = service.join(SID, None).client  # its ROLE_CHANGE went out already
    delivery = service.publish(SID, MessageType.PARTICIPANTS, payload={"master_client_id": new.client_id,
                                                                       "participants": []})
    assert (delivery.delivered, delivery.failed) == (1, 0)
    bodies = [json.loads(body) for _, body in service.queues.receive(new.live_queue_url, 0, 10)]
    assert [b["seq"] for b in bodies] == [1, 2]
    assert all(not service.queues.exists(c.live_queue_url) for c in old)


def test_a_sweep_that_listed_the_expired_incarnation_leaves_the_new_one_alone() -> None:
    clock = ManualClock()
    service = memory_service(SETTINGS, clock)
    service.create_session(SID, None)
    old = service.join(SID, None).client
    clock.advance(TTL + 1)
    _, expired = service.store.active_session_ids()
    assert SID in expired  # what a sweep about to expire it has read
    service.create_session(SID, None)
    new = service.join(SID, None).client
    assert service.expire(SID) == 0
    assert service.store.require_session(SID).active and service.queues.exists(new.live_queue_url)
    assert not service.queues.exists(old.live_queue_url)  # retired when the id was created again
