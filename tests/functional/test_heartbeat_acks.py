"""The heartbeat that acknowledges: webpage_send_heartbeat's `acks` through the real app on moto.

The page sends the receipt handles it gathered since its last beat with the next one; the server
deletes them (ten per DeleteMessageBatch). Live receives hide their messages for several heartbeat
intervals meanwhile, and a live message waiting for its acknowledgement holds no other back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chalice.test import Client

from chalice_app.aws import build_clients
from pbfm_tooling.local_stack import LocalStack
from tests.functional.app_calls import post
from web_py.messages import MessageType
from web_py.pending_acks import MAX_ACKS_PER_CALL


def joined(client: Client, session_id: str) -> tuple[dict[str, str], str]:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    response = post(client, "/api/webpage_join_session", {"session_id": session_id})
    assert response.status_code == 200, response.body
    cookie = {k.lower(): v for k, v in response.headers.items()}["set-cookie"].split(";", 1)[0]
    return {"Cookie": cookie}, response.json_body["client_id"]


def poll(client: Client, cookie: dict[str, str], session_id: str, queue: str) -> list[dict[str, Any]]:
    response = post(client, "/api/webpage_poll_queue",
                    {"session_id": session_id, "queue": queue, "wait_seconds": 0, "max_messages": 10}, cookie)
    assert response.status_code == 200, response.body
    return list(response.json_body["messages"])


def publish(stack: LocalStack, session_id: str) -> int:
    return stack.service.publish(session_id, MessageType.PARTICIPANTS,
                                 payload={"master_client_id": None, "participants": []}).seq


def in_flight(stack: LocalStack, queue_url: str) -> int:
    """Messages received and neither deleted nor visible again (read from moto, not through the app)."""
    sqs = build_clients(stack.settings).sqs
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def beat(client: Client, cookie: dict[str, str], session_id: str, acks: Any = None) -> Any:
    body: dict[str, Any] = {"session_id": session_id}
    if acks is not None:
        body["acks"] = acks
    return post(client, "/api/webpage_send_heartbeat", body, cookie)


def test_a_heartbeat_deletes_the_handles_it_carries(client: Client, stack: LocalStack, session_id: str) -> None:
    cookie, client_id = joined(client, session_id)
    history = poll(client, cookie, session_id, "history")
    assert history
    seqs = [publish(stack, session_id) for _ in range(12)]
    live = poll(client, cookie, session_id, "live")
    live += poll(client, cookie, session_id, "live")
    # Live messages wait for their acknowledgement without holding the others back.
    assert [m["body"]["seq"] for m in live if m["body"]["seq"] in seqs] == seqs
    record = stack.service.store.get_client(session_id, client_id)
    assert record is not None and in_flight(stack, record.live_queue_url) == len(live)
    acks = {"history": [m["receipt_handle"] for m in history], "live": [m["receipt_handle"] for m in live]}
    response = beat(client, cookie, session_id, acks)
    assert response.status_code == 200, response.body
    assert response.json_body["acknowledged"] == len(history) + len(live)
    assert response.json_body["role"] == "master" and response.json_body["receive_urls"] is not None
    # Deleted, not merely hidden: nothing of either queue is in flight any more (the beat may have
    # announced the roster: a new message, visible, on the live queue).
    record = stack.service.store.get_client(session_id, client_id)
    assert record is not None
    assert in_flight(stack, record.live_queue_url) == 0 and in_flight(stack, record.history_queue_url) == 0
    assert beat(client, cookie, session_id).json_body["acknowledged"] == 0


def test_live_receives_hide_their_messages_for_several_heartbeat_intervals(client: Client, stack: LocalStack,
                                                                           session_id: str) -> None:
    cookie, _ = joined(client, session_id)
    settings = stack.service.settings
    assert settings.live_visibility_s >= 4 * settings.heartbeat_interval_s
    answer = beat(client, cookie, session_id).json_body
    live_url = parse_qs(urlsplit(answer["receive_urls"]["live"]["url"]).query)
    history_url = parse_qs(urlsplit(answer["receive_urls"]["history"]["url"]).query)
    assert live_url["VisibilityTimeout"] == [str(settings.live_visibility_s)]
    assert "VisibilityTimeout" not in history_url  # the queue's own, short: acknowledged at once
    poll(client, cookie, session_id, "live")
    publish(stack, session_id)
    first = poll(client, cookie, session_id, "live")
    assert len(first) == 1
    # Not acknowledged: the server's fallback poll hides it as the presigned receive would.
    assert poll(client, cookie, session_id, "live") == []


@pytest.mark.parametrize("acks", [
    {"live": [f"h{n}" for n in range(MAX_ACKS_PER_CALL + 1)]},
    {"live": [f"l{n}" for n in range(30)], "history": [f"h{n}" for n in range(MAX_ACKS_PER_CALL - 29)]},
    {"live": ["same", "same"]},
    {"elsewhere": ["h1"]},
    {"live": [""]},
    {"live": "h1"},
    ["h1"],
])
def test_bad_acks_are_400_and_change_nothing(client: Client, stack: LocalStack, session_id: str, acks: Any) -> None:
    cookie, client_id = joined(client, session_id)
    history = poll(client, cookie, session_id, "history")
    before = stack.service.store.get_client(session_id, client_id)
    assert before is not None
    if isinstance(acks, dict) and isinstance(acks.get("live"), list) and acks["live"] and acks["live"][0] == "h0":
        acks["live"][0] = history[0]["receipt_handle"]  # a real handle among the bad: not deleted either
    response = beat(client, cookie, session_id, acks)
    assert response.status_code == 400, response.body
    assert response.json_body["error"] == "invalid_input"
    after = stack.service.store.get_client(session_id, client_id)
    assert after is not None and after.last_heartbeat == before.last_heartbeat
    handles = [m["receipt_handle"] for m in history]
    assert beat(client, cookie, session_id, {"history": handles}).json_body["acknowledged"] == len(handles)
