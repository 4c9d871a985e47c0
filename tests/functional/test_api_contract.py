"""The registry is the only source of routes, tools and API docs; bad input changes nothing.

Drives the real Chalice app in-process (chalice.test.Client) against the moto server of the stack.
"""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from chalice_app.application import app
from chalice_app.registry import registry
from pbfm_tooling.local_stack import LocalStack
from tests.functional.app_calls import post

PRODUCT_MCP_TOOLS = {
    "webpage_create_session", "webpage_create_browser_queues", "webpage_update_hash_price_display",
    "webpage_send_to_browsers", "webpage_get_session_participants", "webpage_transfer_control_to_observer",
}
PRODUCT_REST = {
    "webpage_create_session", "webpage_join_session", "webpage_get_session_status", "webpage_poll_queue",
    "webpage_delete_message", "webpage_send_heartbeat",
}




def rpc(client: Client, method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> Any:
    response = post(client, "/mcp", {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}},
                    {"Accept": "application/json, text/event-stream"})
    return response.json_body


def event_count(stack: LocalStack, session_id: str) -> int:
    return len(stack.service.store.events_after(session_id, 0))


# -- one registry ------------------------------------------------------------------------------

def test_product_operations_are_registered_with_their_protocols() -> None:
    assert {op.name for op in registry.operations("mcp")} >= PRODUCT_MCP_TOOLS
    assert {op.name for op in registry.operations("rest")} >= PRODUCT_REST


def test_every_rest_operation_has_exactly_its_route() -> None:
    for op in registry.operations("rest"):
        assert op.path == f"/api/{op.name}"
        entry = app.routes[op.path]
        # Browser operations also answer the chat view's CORS preflight.
        assert set(entry) == ({op.method, "OPTIONS"} if op.caller_param else {op.method}), op.name
        assert entry[op.method].view_name == op.name
    api_routes = {path for path in app.routes if path.startswith("/api/")} - {"/api/openapi.json"}
    assert api_routes == {op.path for op in registry.operations("rest")}


def test_mcp_tools_list_is_the_registry(client: Client) -> None:
    tools = rpc(client, "tools/list")["result"]["tools"]
    by_name = {tool["name"]: tool for tool in tools}
    assert set(by_name) == {op.name for op in registry.operations("mcp")}
    for op in registry.operations("mcp"):
        assert by_name[op.name]["inputSchema"] == op.input_schema()
        assert by_name[op.name]["outputSchema"] == op.output_schema()
        assert by_name[op.name]["description"] == op.description


def test_openapi_document_is_the_registry(client: Client) -> None:
    document = client.http.get("/api/openapi.json").json_body
    assert document["openapi"].startswith("3.1")
    operation_ids = {
        entry["operationId"]: (path, method)
        for path, methods in document["paths"].items() for method, entry in methods.items()
    }
    assert operation_ids == {op.name: (op.path, op.method.lower()) for op in registry.operations("rest")}
    join = document["paths"]["/api/webpage_join_session"]["post"]
    assert join["summary"] == registry.get("webpage_join_session").summary  # type: ignore[union-attr]
    assert join["security"] == [{"sessionCookie": []}]
    schema_ref = join["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["session_id"] and "caller" not in schema["properties"]


# -- bad input: a clear error and no state change -----------------------------------------------

@pytest.mark.parametrize(("body", "fragment"), [
    ({"session_id": "has spaces"}, "session_id"),
    ({"session_id": "x" * 25}, "session_id"),
    ({"session_id": 42}, "session_id"),
    ({"session_id": "ok", "unexpected": 1}, "unexpected"),
    ({"session_id": "ok", "title": "t" * 201}, "title"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
])
def test_create_session_rejects_bad_input_without_creating(client: Client, stack: LocalStack, body: Any,
                                                           fragment: str) -> None:
    response = post(client, "/api/webpage_create_session", body)
    assert response.status_code == 400
    assert response.json_body["error"] == "invalid_input"
    assert fragment in response.json_body["message"]
    assert stack.service.store.get_session("ok") is None


def test_oversized_bodies_and_content_are_refused(client: Client, stack: LocalStack, session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    before = event_count(stack, session_id)
    huge = post(client, "/api/webpage_create_session", {"session_id": session_id, "title": "x" * 300_000})
    assert huge.status_code == 413
    blocks = [{"kind": "text", "text": "y" * 9_000} for _ in range(40)]
    result = rpc(client, "tools/call", {"name": "webpage_send_to_browsers",
                                        "arguments": {"session_id": session_id, "content": {"blocks": blocks}}})
    assert result["result"]["isError"] is True
    assert "limit" in result["result"]["content"][0]["text"]
    assert event_count(stack, session_id) == before


def test_mcp_rejects_malformed_requests_and_unknown_tools(client: Client, stack: LocalStack, session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    before = event_count(stack, session_id)
    assert rpc(client, "tools/call", {"name": "no_such_tool", "arguments": {}})["error"]["code"] == -32602
    wrong = rpc(client, "tools/call", {"name": "webpage_update_hash_price_display",
                                      "arguments": {"session_id": session_id, "source": "nyse"}})
    # Bad arguments are results the model can read (SEP-1303), not JSON-RPC errors.
    assert wrong["result"]["isError"] is True and "- source:" in wrong["result"]["content"][0]["text"]
    hostile = rpc(client, "tools/call", {"name": "webpage_send_to_browsers", "arguments": {
        "session_id": session_id, "content": {"blocks": [{"kind": "html", "html": "<script>x()</script>"}]}}})
    assert hostile["result"]["isError"] is True and "content.blocks" in hostile["result"]["content"][0]["text"]
    garbage = post(client, "/mcp", "{oops", {"Accept": "application/json"})
    assert garbage.status_code == 400 and garbage.json_body["error"]["code"] == -32700
    not_rpc = post(client, "/mcp", {"id": 3, "method": 7}, {"Accept": "application/json"})
    assert not_rpc.json_body["error"]["code"] == -32600
    assert event_count(stack, session_id) == before


def test_unknown_session_is_404_and_nothing_is_created(client: Client, stack: LocalStack) -> None:
    response = post(client, "/api/webpage_join_session", {"session_id": "never-created"})
    assert response.status_code == 404
    assert stack.service.store.get_session("never-created") is None
    assert not [q for q in stack.service.queues._sqs.list_queues().get("QueueUrls", []) if "never-created" in q]


# -- security --------------------------------------------------------------------------------------

def joined_cookie(client: Client, session_id: str) -> tuple[str, str]:
    response = post(client, "/api/webpage_join_session", {"session_id": session_id})
    assert response.status_code == 200
    headers = {k.lower(): v for k, v in response.headers.items()}
    cookie = headers["set-cookie"].split(";", 1)[0]
    return cookie, response.json_body["client_id"]


def test_queue_access_needs_this_sessions_valid_cookie(client: Client, session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    cookie, client_id = joined_cookie(client, session_id)
    poll = {"session_id": session_id, "queue": "history", "wait_seconds": 0}
    assert post(client, "/api/webpage_poll_queue", poll).status_code == 401
    assert post(client, "/api/webpage_poll_queue", poll, {"Cookie": cookie}).status_code == 200

    name, value = cookie.split("=", 1)
    tampered = f"{name}={value[:-1]}{'0' if value[-1] != '0' else '1'}"
    assert post(client, "/api/webpage_poll_queue", poll, {"Cookie": tampered}).status_code == 401
    forged_id = f"{name}={'a' * 12}.{value.split('.', 1)[1]}"
    assert post(client, "/api/webpage_poll_queue", poll, {"Cookie": forged_id}).status_code == 401
    assert "invalid" in post(client, "/api/webpage_poll_queue", poll, {"Cookie": forged_id}).json_body["message"]

    # Joining with a bad cookie (e.g. signed before a server restart) is a fresh join, not a dead end.
    rejoined = post(client, "/api/webpage_join_session", {"session_id": session_id}, {"Cookie": tampered})
    assert rejoined.status_code == 200 and rejoined.json_body["client_id"] != client_id

    # A cookie of one session is no identity in another.
    other = session_id + "b"
    post(client, "/api/webpage_create_session", {"session_id": other})
    foreign = {"session_id": other, "queue": "live", "wait_seconds": 0}
    assert post(client, "/api/webpage_poll_queue", foreign, {"Cookie": cookie}).status_code == 401

    # There is no way to name a queue: URLs and client ids in the body are refused.
    sneaky = {**poll, "queue_url": "http://127.0.0.1/123/other.fifo"}
    assert post(client, "/api/webpage_poll_queue", sneaky, {"Cookie": cookie}).status_code == 400
    assert post(client, "/api/webpage_poll_queue", {**poll, "queue": "../other"},
                {"Cookie": cookie}).status_code == 400
    assert post(client, "/api/webpage_poll_queue", {**poll, "client_id": client_id},
                {"Cookie": cookie}).status_code == 400


def test_observer_cannot_do_what_only_the_master_may(client: Client, stack: LocalStack, session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    master_cookie, _ = joined_cookie(client, session_id)
    observer_cookie, _ = joined_cookie(client, session_id)
    before = event_count(stack, session_id)
    refused = post(client, "/api/webpage_request_price_refresh", {"session_id": session_id},
                   {"Cookie": observer_cookie})
    assert refused.status_code == 403 and refused.json_body["error"] == "forbidden"
    assert event_count(stack, session_id) == before
    allowed = post(client, "/api/webpage_request_price_refresh", {"session_id": session_id},
                   {"Cookie": master_cookie})
    assert allowed.status_code == 200 and event_count(stack, session_id) == before + 1


def test_ai_only_operations_are_not_rest_routes(client: Client) -> None:
    for name in ("webpage_update_hash_price_display", "webpage_send_to_browsers",
                 "webpage_transfer_control_to_observer", "webpage_end_session"):
        assert post(client, f"/api/{name}", {"session_id": "demo"}).status_code in (403, 404)


def test_each_tab_of_a_browser_is_its_own_participant(client: Client, stack: LocalStack, session_id: str) -> None:
    post(client, "/api/webpage_create_session", {"session_id": session_id})
    first = post(client, "/api/webpage_join_session", {"session_id": session_id}, {"X-PBFM-Tab": "tab-one"})
    headers = {k.lower(): v for k, v in first.headers.items()}
    cookie = headers["set-cookie"].split(";", 1)[0]
    second = post(client, "/api/webpage_join_session", {"session_id": session_id},
                  {"Cookie": cookie, "X-PBFM-Tab": "tab-two"})
    assert "set-cookie" not in {k.lower() for k in second.headers}  # same browser, same cookie
    assert second.json_body["client_id"] != first.json_body["client_id"]
    assert (first.json_body["role"], second.json_body["role"]) == ("master", "observer")
    # A reload of the first tab (same cookie, same tab id) is the same participant.
    reload = post(client, "/api/webpage_join_session", {"session_id": session_id},
                  {"Cookie": cookie, "X-PBFM-Tab": "tab-one"})
    assert reload.json_body["client_id"] == first.json_body["client_id"] and reload.json_body["resumed"] is True
    assert len(stack.service.participants(session_id)[1]) == 2
    bad_tab = post(client, "/api/webpage_join_session", {"session_id": session_id},
                   {"Cookie": cookie, "X-PBFM-Tab": "<script>"})
    assert bad_tab.status_code == 400 and "X-PBFM-Tab".lower() in bad_tab.json_body["message"]
    assert len(stack.service.participants(session_id)[1]) == 2
