"""Small clients of a running stack for the page's tests: MCP tool calls and plain REST calls.

The page's ``Http`` in CPython is ``pbfm_tooling.http_transport.HttpxTransport``.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from pbfm_tooling.tls import tls_context

_ids = itertools.count(1)


class McpError(RuntimeError):
    pass


def mcp_call(base_url: str, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call one MCP tool the way an AI client does (JSON-RPC over POST /mcp); its structured result."""
    request = {
        "jsonrpc": "2.0",
        "id": next(_ids),
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    response = httpx.post(f"{base_url}/mcp", json=request, headers=headers, timeout=60, verify=tls_context())
    response.raise_for_status()
    answer = response.json()
    if "error" in answer:
        raise McpError(f"{tool}: {answer['error']}")
    result = answer["result"]
    if result.get("isError"):
        raise McpError(f"{tool}: {result['content']}")
    return dict(result.get("structuredContent") or {})


def rest_call(base_url: str, operation: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/api/{operation}", json=body, timeout=60, verify=tls_context())
    response.raise_for_status()
    return dict(response.json())
