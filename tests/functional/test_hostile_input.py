"""Hostile requests through the real app (chalice.test.Client) on the moto server: 4xx, never 5xx.

Each case here was a 500 (or a lost identity) before: foreign cookies hid ours, deep nesting raised
RecursionError, /mcp parsed any size, and SQS refused a batch with a receipt named twice.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from pbfm_tooling.local_stack import LocalStack
from tests.functional.app_calls import post

MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
JUNK_COOKIES = 'prefs={"theme":"dark"}; x="a; note=hello world; =foo; bare; list=a,b'




def join(client: Client, session_id: str, headers: dict[str, str] | None = None) -> Any:
    response = post(client, "/api/webpage_join_session", {"session_id": session_id}, headers)
    assert response.status_code == 200, response.body
    return response


def set_cookie(response: Any) -> str:
    return {k.lower(): v for k, v in response.headers.items()}["set-cookie"].split(";", 1)[0]


def state(stack: LocalStack, session_id: str) -> tuple[Any, ...]:
    session, people = stack.service.participants(session_id)
    return session.status, session.seq, session.master_client_id, sorted((p.client_id, p.role) for p in people)


def test_foreign_junk_cookies_before_ours_keep_the_identity(client: Client, stack: LocalStack,
                                                            session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    joined = join(client, session_id, {"X-PBFM-Tab": "t1"})
    ours = set_cookie(joined)
    cookie = {"Cookie": f"{JUNK_COOKIES}; {ours}; other={{}}", "X-PBFM-Tab": "t1"}

    beat = post(client, "/api/webpage_send_heartbeat", {"session_id": session_id}, cookie)
    assert beat.status_code == 200, beat.body
    assert beat.json_body["role"] == "master"

    again = join(client, session_id, cookie)
    assert again.json_body["client_id"] == joined.json_body["client_id"]
    assert again.json_body["resumed"] is True
    assert "set-cookie" not in {k.lower() for k in again.headers}  # no new identity minted
    assert [p.client_id for p in stack.service.participants(session_id)[1]] == [joined.json_body["client_id"]]


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_rest_bodies_are_400(client: Client, stack: LocalStack, session_id: str, depth: int) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    before = state(stack, session_id)
    for path in ("/api/webpage_create_session", "/api/webpage_join_session", "/api/webpage_send_heartbeat"):
        nested = "[" * depth + "]" * depth
        for raw in (nested, json.dumps({"session_id": session_id})[:-1] + f', "x": {nested}}}'):
            response = post(client, path, raw)
            assert response.status_code == 400, (path, response.body[:200])
            assert response.json_body["error"] == "invalid_input"
            assert "nested" in response.json_body["message"]
    assert state(stack, session_id) == before


def test_mcp_refuses_deep_and_huge_bodies(client: Client, stack: LocalStack, session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    before = state(stack, session_id)
    deep = "[" * 100_000 + "]" * 100_000
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "webpage_send_to_browsers", "arguments": {"session_id": session_id, "content": "X"}}}
    nested_call = json.dumps(call).replace('"X"', deep)
    for raw in (deep, nested_call):
        response = post(client, "/mcp", raw, MCP_HEADERS)
        assert response.status_code == 400
        assert response.json_body["error"]["code"] == -32700 and response.json_body["id"] is None

    huge = json.dumps(call).replace('"X"', json.dumps({"blocks": [{"kind": "text", "text": "y" * 10_000_000}]}))
    response = post(client, "/mcp", huge, MCP_HEADERS)
    assert response.status_code == 413
    assert response.json_body["error"]["code"] == -32600 and "limit" in response.json_body["error"]["message"]
    assert state(stack, session_id) == before


def test_a_receipt_named_twice_is_400_and_deletes_nothing(client: Client, stack: LocalStack,
                                                          session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    cookie = {"Cookie": set_cookie(join(client, session_id))}
    polled = post(client, "/api/webpage_poll_queue",
                  {"session_id": session_id, "queue": "history", "wait_seconds": 0, "max_messages": 1}, cookie)
    handle = polled.json_body["messages"][0]["receipt_handle"]
    twice = {"session_id": session_id, "queue": "history", "receipt_handles": [handle, handle]}
    refused = post(client, "/api/webpage_delete_message", twice, cookie)
    assert refused.status_code == 400, refused.body
    assert refused.json_body["error"] == "invalid_input"
    assert "receipt_handles" in refused.json_body["message"] and "only once" in refused.json_body["message"]
    # The refusal never reached SQS: the receipt is still good for exactly one delete.
    once = post(client, "/api/webpage_delete_message", {**twice, "receipt_handles": [handle]}, cookie)
    assert (once.status_code, once.json_body) == (200, {"deleted": 1, "heartbeat": None})


def test_invalid_tool_arguments_come_back_as_results_the_model_reads(client: Client, stack: LocalStack,
                                                                     session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    before = state(stack, session_id)
    response = post(client, "/mcp", {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "webpage_transfer_control_to_observer",
        "arguments": {"session_id": "has spaces", "client_id": 12, "extra": True}}}, MCP_HEADERS)
    assert response.status_code == 200
    result = response.json_body["result"]
    assert result["isError"] is True and "structuredContent" not in result
    lines = result["content"][0]["text"].splitlines()
    assert lines[0] == "Invalid arguments for webpage_transfer_control_to_observer:"
    assert [line.split(":")[0] for line in lines[1:-1]] == ["- session_id", "- client_id", "- extra"]
    assert state(stack, session_id) == before
