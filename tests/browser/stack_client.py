"""Small clients of a running stack for the page's tests: MCP tool calls and the page's Http in CPython."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from web_py.session_manager import TransportError

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
    response = httpx.post(f"{base_url}/mcp", json=request, headers=headers, timeout=60)
    response.raise_for_status()
    answer = response.json()
    if "error" in answer:
        raise McpError(f"{tool}: {answer['error']}")
    result = answer["result"]
    if result.get("isError"):
        raise McpError(f"{tool}: {result['content']}")
    return dict(result.get("structuredContent") or {})


def rest_call(base_url: str, operation: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/api/{operation}", json=body, timeout=60)
    response.raise_for_status()
    return dict(response.json())


class HttpxHttp:
    """``web_py.session_manager.Http`` over httpx: one instance is one browser (its own cookie jar)."""

    def __init__(self, base_url: str, cookies: httpx.Cookies | None = None) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=60, cookies=cookies)
        # Presigned URLs go to S3 (moto): no cookies there, like fetch(..., credentials: "omit").
        self.documents = httpx.AsyncClient(timeout=60)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            response = await self.client.post(path, json=body)
        except httpx.TransportError as exc:
            raise TransportError(str(exc)) from exc
        return response.status_code, _json(response)

    async def get_json(self, url: str) -> tuple[int, Any]:
        try:
            response = await self.documents.get(url)
        except httpx.TransportError as exc:
            raise TransportError(str(exc)) from exc
        return response.status_code, _json(response)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.documents.aclose()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
