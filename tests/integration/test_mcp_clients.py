"""Real MCP clients against the MCP endpoint served by Chalice's local HTTP server.

A toy registry is mounted with ``mount_mcp`` (the same glue the application uses) on a Chalice app
that runs in ``chalice.local``'s threaded server on a free port. The clients are the ``mcp`` 2.3.0
Python client over streamable HTTP and the MCP Inspector CLI 0.15.0 (Node).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import jsonschema
import pytest
from chalice import Chalice
from chalice.config import Config
from chalice.local import create_local_server
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from chalice_app.caller import Caller
from chalice_app.errors import Forbidden
from chalice_app.mcp_endpoint import mount_mcp
from chalice_app.registry import Registry, ToolHints
from chalice_app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# By path: the Inspector 2.x package (aliased) also installs a ".bin/mcp-inspector".
INSPECTOR = REPO / "node_modules" / "@modelcontextprotocol" / "inspector" / "cli" / "build" / "cli.js"
T = TypeVar("T")

reg = Registry()


class Stamp(BaseModel):
    protocol: str
    length: int


class Echoed(BaseModel):
    text: str
    # A nested model puts "$defs"/"$ref" in the output schema; the 2.x client must resolve them.
    stamp: Stamp


class Total(BaseModel):
    total: int


@reg.api_function(title="Echo", hints=ToolHints(read_only=True))
def toy_echo(text: str, caller: Caller) -> Echoed:
    """Echo the text back, stamped with how the call arrived."""
    return Echoed(text=text, stamp=Stamp(protocol=caller.protocol, length=len(text)))


@reg.api_function(("mcp",), title="Add", hints=ToolHints(read_only=True))
def toy_add(a: int, b: int = 0) -> Total:
    """Add two integers."""
    return Total(total=a + b)


@reg.api_function(title="Refuse", hints=ToolHints())
def toy_forbidden(reason: str) -> Total:
    """Always refuse, with the given reason."""
    raise Forbidden(f"Refused: {reason}")


@dataclass
class LiveServer:
    url: str
    # Read on every request, so a test can switch the token on and off without a restart.
    settings: list[Settings] = field(default_factory=lambda: [Settings()])


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    app = Chalice(app_name="mcp-toy")
    live = LiveServer(url="")
    mount_mcp(app, reg, lambda: live.settings[0])
    local = create_local_server(app, Config.create(app_name="mcp-toy"), "127.0.0.1", 0)
    port = local.server.server_address[1]
    live.url = f"http://127.0.0.1:{port}/mcp"
    thread = threading.Thread(target=local.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield live
    finally:
        local.shutdown()
        local.server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def token(server: LiveServer) -> Iterator[str]:
    secret = "integration-token"
    server.settings[0] = Settings(mcp_token=secret)
    try:
        yield secret
    finally:
        server.settings[0] = Settings()


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(fn)


def _leaves(group: BaseExceptionGroup[MCPError]) -> list[MCPError]:
    found: list[MCPError] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


# --- the mcp 2.3.0 Python client ----------------------------------------------------------------


def test_python_client_initializes_lists_and_calls(server: LiveServer) -> None:
    async def scenario() -> dict[str, Any]:
        async with Client(server.url) as client:
            tools = await client.list_tools()
            echoed = await client.call_tool("toy_echo", {"text": "héllo"})
            added = await client.call_tool("toy_add", {"a": 2, "b": 40})
            return {
                "version": client.protocol_version,
                "server": client.server_info,
                "tools": tools.tools,
                "echoed": echoed,
                "added": added,
            }

    seen = run(scenario)
    # The client's server/discover probe was answered: it speaks the handshake-free 2026-07-28 revision.
    assert seen["version"] == "2026-07-28"
    assert seen["server"].name == "pb-fm-webpage"
    tools = {tool.name: tool for tool in seen["tools"]}
    assert sorted(tools) == ["toy_add", "toy_echo", "toy_forbidden"]
    assert tools["toy_echo"].description == "Echo the text back, stamped with how the call arrived."

    # call_tool has already checked structuredContent against outputSchema (jsonschema, $refs
    # resolved); check again here so the test states it rather than relying on client internals.
    echoed = seen["echoed"]
    assert echoed.is_error is False
    assert echoed.structured_content == {"text": "héllo", "stamp": {"protocol": "mcp", "length": 5}}
    jsonschema.validate(echoed.structured_content, tools["toy_echo"].output_schema)
    assert json.loads(echoed.content[0].text) == echoed.structured_content
    assert seen["added"].structured_content == {"total": 42}


def test_python_client_sees_tool_errors_as_results(server: LiveServer) -> None:
    async def scenario() -> Any:
        async with Client(server.url) as client:
            return await client.call_tool("toy_forbidden", {"reason": "not the master"})

    result = run(scenario)
    assert result.is_error is True
    assert result.structured_content is None
    assert result.content[0].text == "Refused: not the master"


def test_python_client_sees_bad_arguments_as_error_results(server: LiveServer) -> None:
    # SEP-1303: the model reads what was wrong and retries; an SDK exception would never reach it.
    async def scenario() -> Any:
        async with Client(server.url) as client:
            return await client.call_tool("toy_add", {"a": "many", "c": 1})

    result = run(scenario)
    assert result.is_error is True
    assert result.structured_content is None
    assert result.content[0].text.splitlines() == [
        "Invalid arguments for toy_add:",
        "- a: Input should be a valid integer, unable to parse string as an integer",
        "- c: Extra inputs are not permitted",
        "Fix these and call the tool again.",
    ]


def test_python_client_gets_invalid_params_for_unknown_tools(server: LiveServer) -> None:
    async def scenario() -> list[MCPError]:
        errors = []
        async with Client(server.url) as client:
            try:
                await client.call_tool("no_such_tool", {})
            except MCPError as exc:
                errors.append(exc)
        return errors

    errors = run(scenario)
    assert [e.code for e in errors] == [-32602]
    assert "no_such_tool" in str(errors[0])


def test_python_client_needs_the_bearer_token_when_set(server: LiveServer, token: str) -> None:
    async def without_token() -> list[str]:
        refusals: list[str] = []
        try:
            async with Client(server.url) as client:
                await client.list_tools()
        except* MCPError as group:
            # The client's task groups wrap the refusal; the 401's JSON-RPC body is what surfaces.
            refusals = [str(exc) for exc in _leaves(group)]
        return refusals

    assert run(without_token) == ["A valid bearer token is required."]

    async def with_token() -> list[str]:
        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
            Client(streamable_http_client(server.url, http_client=http)) as client,
        ):
            return [tool.name for tool in (await client.list_tools()).tools]

    assert "toy_echo" in run(with_token)


def test_plain_http_edges_through_chalice(server: LiveServer, token: str) -> None:
    # The route glue: headers, raw body and method reach handle_mcp unchanged.
    with httpx.Client() as http:
        get = http.get(server.url)
        assert get.status_code == 405
        assert get.headers["allow"] == "POST, OPTIONS"
        bad = http.post(
            server.url,
            content=b"{oops",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == -32700
        unauthorized = http.post(server.url, json={"jsonrpc": "2.0", "id": 0, "method": "ping"})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["www-authenticate"] == "Bearer"


# --- the MCP Inspector CLI 0.15.0 ---------------------------------------------------------------


def inspector(url: str, *args: str) -> Any:
    completed = subprocess.run(
        [str(INSPECTOR), "--cli", url, "--transport", "http", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return json.loads(completed.stdout)


@pytest.fixture
def require_inspector() -> None:
    # ./dev.sh runs `npm ci` before any test: a missing Inspector is a failure, never a skip.
    assert INSPECTOR.exists() and shutil.which("node") is not None, "run `npm ci` (MCP Inspector CLI)"


needs_inspector = pytest.mark.usefixtures("require_inspector")


# Listing, calling and refused arguments through this Inspector are test_mcp_hosts.py's, on the
# product's own tools; here, a tool that refuses (a domain error, not a bad argument).
@needs_inspector
def test_inspector_sees_tool_errors(server: LiveServer) -> None:
    result = inspector(
        server.url, "--method", "tools/call", "--tool-name", "toy_forbidden", "--tool-arg", "reason=nope"
    )
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": "Refused: nope"}]
