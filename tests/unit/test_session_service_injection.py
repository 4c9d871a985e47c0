"""The service reaches operations by injection from the app that was built with it: no global."""

from __future__ import annotations

import json

from chalice.test import Client

from chalice_app.application import create_app
from chalice_app.registry import registry
from pbfm_tooling.memory_backends import ManualClock, memory_service


def test_the_injected_service_is_no_part_of_any_public_schema() -> None:
    injected = [op for op in registry.operations() if op.service_param is not None]
    assert {op.name for op in injected} >= {"webpage_create_session", "webpage_send_heartbeat",
                                            "webpage_update_hash_price_display"}
    for op in registry.operations():
        assert op.service_param not in op.input_schema().get("properties", {})
        assert op.caller_param not in op.input_schema().get("properties", {})


def test_two_apps_serve_their_own_services_side_by_side() -> None:
    clock = ManualClock()
    first, second = memory_service(clock=clock), memory_service(clock=clock)
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "webpage_create_session", "arguments": {"session_id": "only-here"}}}
    with Client(create_app(lambda: first)) as client:
        response = client.http.post("/mcp", body=json.dumps(call), headers={"Content-Type": "application/json"})
    assert json.loads(response.body)["result"]["structuredContent"]["created"] is True
    assert first.store.get_session("only-here") is not None
    assert second.store.get_session("only-here") is None
