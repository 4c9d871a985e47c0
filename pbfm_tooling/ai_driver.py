"""A small built-in "AI": drives a session through the real MCP client, as an assistant would."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

log = logging.getLogger(__name__)


class ToolFailed(RuntimeError):
    """An MCP tool answered with isError."""


async def call_tools(mcp_url: str, calls: list[tuple[str, dict[str, Any]]], token: str | None = None
                     ) -> list[dict[str, Any]]:
    """Call MCP tools in order over one client connection; returns their structured results."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    results: list[dict[str, Any]] = []
    failure: str | None = None
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(mcp_url, http_client=http)) as client,
    ):
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            if result.is_error:
                text = " ".join(getattr(block, "text", "") for block in result.content)
                failure = f"{name} failed: {text}"
                break
            results.append(dict(result.structured_content or {}))
    # Raised outside the client's task group, so callers see a plain error, not an ExceptionGroup.
    if failure is not None:
        raise ToolFailed(failure)
    return results


def call_tool(mcp_url: str, name: str, arguments: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    return anyio.run(call_tools, mcp_url, [(name, arguments)], token)[0]


class PriceDriver:
    """Every ``interval_s``, asks for a fresh HASH price on the session, like an assistant would."""

    def __init__(self, mcp_url: str, session_id: str, interval_s: float = 3.0, token: str | None = None) -> None:
        self.mcp_url = mcp_url
        self.session_id = session_id
        self.interval_s = interval_s
        self.token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ai-driver", daemon=True)

    def start(self) -> PriceDriver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        call_tool(self.mcp_url, "webpage_create_session", {"session_id": self.session_id,
                                                           "title": "HASH-USD live"}, self.token)
        call_tool(self.mcp_url, "webpage_send_to_browsers", {"session_id": self.session_id, "content": {
            "blocks": [
                {"kind": "text", "style": "heading", "text": "HASH on Figure Markets"},
                {"kind": "price_card"},
                {"kind": "text", "style": "note",
                 "text": "Driven by the built-in demo assistant through MCP; every open browser shows the same."},
            ],
        }}, self.token)
        while not self._stop.is_set():
            try:
                result = call_tool(self.mcp_url, "webpage_update_hash_price_display",
                                   {"session_id": self.session_id}, self.token)
                log.info("price %s (seq %s, %s browsers)", result["price"]["display_price"], result["seq"],
                         result["delivered"])
            except Exception as exc:  # keep the demo alive through a transient failure
                log.warning("price update failed: %s", exc)
            self._stop.wait(self.interval_s)
