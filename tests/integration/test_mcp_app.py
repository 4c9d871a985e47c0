"""The real app's /mcp with the mcp Python SDK (the other hosts, the Inspector CLI among them, are
tests/integration/test_mcp_hosts.py's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import anyio
import httpx
import pytest
from mcp import Client

from pbfm_tooling.ai_driver import ToolFailed, call_tool, call_tools
from pbfm_tooling.local_stack import LocalStack
from tests.functional.test_api_contract import PRODUCT_MCP_TOOLS


def test_sdk_client_lists_the_product_tools_and_drives_a_session(stack: LocalStack, session_id: str) -> None:
    async def scenario() -> tuple[set[str], str]:
        async with Client(stack.mcp_url) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            return tools, client.protocol_version

    tools, version = anyio.run(scenario)
    assert tools >= PRODUCT_MCP_TOOLS
    assert version == "2026-07-28"  # the 2.x client's server/discover probe succeeds

    created, price, layout, people = anyio.run(call_tools, stack.mcp_url, [
        ("webpage_create_session", {"session_id": session_id, "title": "MCP test"}),
        ("webpage_update_hash_price_display", {"session_id": session_id, "source": "simulated"}),
        ("webpage_send_to_browsers", {"session_id": session_id, "content": {
            "title": "Hello", "blocks": [{"kind": "text", "text": "<b>hi</b>"}, {"kind": "price_card"}]}}),
        ("webpage_get_session_participants", {"session_id": session_id}),
    ])
    assert created["created"] is True
    assert price["seq"] == 1 and price["price"]["symbol"] == "HASH-USD"
    assert layout["seq"] == 2 and layout["s3_key"].startswith(f"layouts/{session_id}/")
    assert people["participants"] == []
    stored = stack.service.blobs.get_json(layout["s3_key"])
    assert stored["blocks"][0] == {"kind": "text", "text": "<b>hi</b>", "style": "paragraph"}


def test_tool_errors_come_back_as_tool_errors(stack: LocalStack) -> None:
    with pytest.raises(ToolFailed, match="No session"):
        call_tool(stack.mcp_url, "webpage_update_hash_price_display", {"session_id": "nobody-home"})


def test_invalid_arguments_come_back_as_tool_errors_the_model_reads(stack: LocalStack) -> None:
    with pytest.raises(ToolFailed, match="Invalid arguments for webpage_update_hash_price_display:\n- source: "):
        call_tool(stack.mcp_url, "webpage_update_hash_price_display", {"session_id": "nobody-home", "source": "nyse"})


@pytest.fixture
def token(stack: LocalStack) -> Iterator[str]:
    original = stack.service.settings
    stack.service.settings = dataclasses.replace(original, mcp_token="s3cret-token")
    try:
        yield "s3cret-token"
    finally:
        stack.service.settings = original


def test_mcp_route_requires_the_token_when_configured(stack: LocalStack, token: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    refused = httpx.post(stack.mcp_url, json=body, headers={"Accept": "application/json"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(stack.mcp_url, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    created = call_tool(stack.mcp_url, "webpage_create_session", {"session_id": "with-token"}, token)
    assert created["session_id"] == "with-token"
