"""handle_mcp called directly: every HTTP and JSON-RPC branch, against a registry of toy operations."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import tomllib
from pathlib import Path
from typing import Any

import mcp_types
import pytest
from pydantic import BaseModel

from chalice_app.caller import Caller
from chalice_app.errors import InvalidInput, NotFound
from chalice_app.mcp_endpoint import HANDSHAKE_PROTOCOL_VERSIONS, SUPPORTED_PROTOCOL_VERSIONS, handle_mcp
from chalice_app.registry import Registry, ToolHints
from chalice_app.settings import Settings
from chalice_app.version import PACKAGED_VERSION

reg = Registry()


class Echoed(BaseModel):
    text: str
    protocol: str


class Total(BaseModel):
    total: int


@reg.api_function(title="Echo", hints=ToolHints(read_only=True))
def toy_echo(text: str, caller: Caller) -> Echoed:
    """Echo the text back, with the protocol the call arrived through."""
    return Echoed(text=text, protocol=caller.protocol)


@reg.api_function(("mcp",), title="Add", hints=ToolHints(read_only=True, destructive=False, idempotent=True))
def toy_add(a: int, b: int = 0) -> Total:
    """Add two integers."""
    return Total(total=a + b)


@reg.api_function(title="Fail", hints=ToolHints())
def toy_fail(kind: str) -> Total:
    """Fail on purpose: kind is "not_found", "invalid" or anything else for a crash."""
    if kind == "not_found":
        raise NotFound("There is no such thing.")
    if kind == "invalid":
        raise InvalidInput("The tool itself rejected this.")
    raise RuntimeError("secret internals")


@reg.api_function(("rest",))
def toy_rest_only() -> Total:
    """Only reachable over REST."""
    return Total(total=0)


SETTINGS = Settings()


def post(
    body: Any,
    *,
    settings: Settings = SETTINGS,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str | list[str]], Any]:
    response = handle_mcp(
        reg,
        settings,
        method="POST",
        headers=headers or {},
        raw_body=raw if raw is not None else json.dumps(body).encode(),
    )
    payload = json.loads(response.body) if response.body else None
    return response.status_code, response.headers, payload


def request(method: str, params: dict[str, Any] | None = None, request_id: Any = 1, **kwargs: Any) -> Any:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return post(message, **kwargs)


def call(name: str, arguments: Any) -> Any:
    return request("tools/call", {"name": name, "arguments": arguments})


# --- HTTP level ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_only_post_is_allowed(method: str) -> None:
    response = handle_mcp(reg, SETTINGS, method=method, headers={}, raw_body=None)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.headers["Content-Type"] == "application/json"


def test_answers_are_json() -> None:
    status, headers, body = request("ping")
    assert (status, body) == (200, {"jsonrpc": "2.0", "id": 1, "result": {}})
    assert headers["Content-Type"] == "application/json"


def test_bearer_token_required_when_configured() -> None:
    settings = Settings(mcp_token="s3cret-tökén")
    status, headers, body = request("ping", settings=settings)
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert body["id"] is None

    status, headers, _ = request("ping", settings=settings, headers={"Authorization": "Bearer wrong"})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")

    status, _, _ = request("ping", settings=settings, headers={"Authorization": "Basic s3cret-tökén"})
    assert status == 401

    # Header names are case-insensitive; the scheme too. Non-ASCII tokens must not crash the compare.
    status, _, body = request("ping", settings=settings, headers={"authorization": "bearer s3cret-tökén"})
    assert (status, body["result"]) == (200, {})


def test_no_token_configured_means_open() -> None:
    status, _, _ = request("ping", headers={"Authorization": "Bearer anything"})
    assert status == 200


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        ("https://app.example.com", "api.example.com", ("https://app.example.com",), True),
        ("https://APP.example.com:443/", "api.example.com", ("https://app.example.com:443",), True),
        ("https://evil.example", "api.example.com", ("https://app.example.com",), False),
        # Loopback page to a loopback server: local development, the Inspector's web UI.
        ("http://localhost:6274", "127.0.0.1:8000", (), True),
        ("http://127.0.0.1:5173", "localhost:8000", (), True),
        ("http://[::1]:3000", "[::1]:8000", (), True),
        # DNS rebinding: the attacker's hostname stays in Origin even though it resolves locally.
        ("http://rebind.evil:8000", "rebind.evil:8000", (), False),
        # A deployed server is not reached on a loopback Host; loopback pages need listing there.
        ("http://localhost:6274", "x.execute-api.us-east-1.amazonaws.com", (), False),
        ("http://localhost:6274", "x.execute-api.us-east-1.amazonaws.com", ("http://localhost:6274",), True),
        ("null", "localhost:8000", (), False),
        ("file://", "localhost:8000", (), False),
        ("http://localhost:notaport", "localhost:8000", (), False),
    ],
)
def test_origin_policy(origin: str, host: str, allowed: tuple[str, ...], ok: bool) -> None:
    settings = Settings(allowed_origins=allowed)
    status, _, body = request("ping", settings=settings, headers={"Origin": origin, "Host": host})
    if ok:
        assert status == 200
    else:
        assert status == 403
        assert body["error"]["code"] == -32600


def test_origin_is_checked_before_the_token() -> None:
    settings = Settings(mcp_token="t")
    status, _, _ = request("ping", settings=settings, headers={"Origin": "https://evil.example"})
    assert status == 403


# --- JSON-RPC framing ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b'{"jsonrpc": "2.0", "id": 1'])
def test_bad_json_is_a_parse_error(raw: bytes) -> None:
    status, _, body = post(None, raw=raw)
    assert status == 400
    assert body["id"] is None
    assert body["error"]["code"] == -32700


@pytest.mark.parametrize("depth", [33, 2_000, 100_000])
def test_deep_nesting_is_a_parse_error_not_a_crash(depth: int) -> None:
    # 100,000 levels used to reach json.loads and raise RecursionError (a 500 with a traceback).
    raw = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    status, _, body = post(None, raw=raw)
    assert status == 400
    assert body["id"] is None
    assert body["error"]["code"] == -32700
    assert "nested" in body["error"]["message"]


def test_nesting_within_the_limit_and_brackets_in_strings_are_fine() -> None:
    deep = json.loads("[" * 28 + "]" * 28)
    status, _, body = request("ping", {"x": deep, "y": "[[[[" * 1000 + '\\"{{{'})
    assert (status, body["result"]) == (200, {})


def test_bodies_over_the_limit_are_refused_unparsed() -> None:
    settings = Settings(max_message_bytes=1_000)
    status, _, body = request("ping", {"pad": "x" * 2_100}, settings=settings)
    assert status == 413
    assert body["id"] is None
    assert body["error"]["code"] == -32600
    assert "2000 bytes" in body["error"]["message"]
    status, _, _ = request("ping", {"pad": "x" * 1_900}, settings=settings)
    assert status == 200


def test_none_body_is_a_parse_error() -> None:
    response = handle_mcp(reg, SETTINGS, method="POST", headers={}, raw_body=None)
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == -32700


def test_batches_are_rejected() -> None:
    status, _, body = post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert status == 400
    assert body["error"]["code"] == -32600
    assert "Batch" in body["error"]["message"]


@pytest.mark.parametrize(
    "message",
    [
        "ping",
        42,
        {"id": 1, "method": "ping"},
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
        {"jsonrpc": "2.0", "id": [1], "method": "ping"},
        {"jsonrpc": "2.0", "method": 7},
    ],
)
def test_malformed_messages_without_usable_id_get_400(message: Any) -> None:
    status, _, body = post(message)
    assert status == 400
    assert body["id"] is None
    assert body["error"]["code"] == -32600


def test_malformed_request_with_usable_id_gets_200() -> None:
    status, _, body = post({"jsonrpc": "2.0", "id": 9, "method": 7})
    assert status == 200
    assert body["id"] == 9
    assert body["error"]["code"] == -32600


@pytest.mark.parametrize("request_id", [0, "", "abc", -3])
def test_any_string_or_integer_id_is_echoed(request_id: Any) -> None:
    status, _, body = request("ping", request_id=request_id)
    assert status == 200
    assert body["id"] == request_id
    assert body["result"] == {}


def test_notifications_get_202_and_no_body() -> None:
    for method in ("notifications/initialized", "notifications/cancelled", "notifications/whatever"):
        response = handle_mcp(
            reg,
            SETTINGS,
            method="POST",
            headers={},
            raw_body=json.dumps({"jsonrpc": "2.0", "method": method}).encode(),
        )
        assert response.status_code == 202
        assert response.body == ""


def test_client_responses_are_acknowledged() -> None:
    status, _, body = post({"jsonrpc": "2.0", "id": 3, "result": {}})
    assert (status, body) == (202, None)


def test_params_must_be_an_object() -> None:
    status, _, body = post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1, 2]})
    assert status == 200
    assert body["error"]["code"] == -32602


def test_unknown_method() -> None:
    status, _, body = request("sampling/createMessage")
    assert status == 200
    assert body["error"]["code"] == -32601


# --- versions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", HANDSHAKE_PROTOCOL_VERSIONS)
def test_initialize_echoes_a_supported_version(version: str) -> None:
    status, _, body = request("initialize", {"protocolVersion": version, "capabilities": {}})
    assert status == 200
    result = mcp_types.InitializeResult.model_validate(body["result"])
    assert result.protocol_version == version
    assert result.server_info.name == "pb-fm-webpage"
    assert result.capabilities.tools is not None


def test_initialize_offers_the_latest_for_an_unknown_version() -> None:
    _, _, body = request("initialize", {"protocolVersion": "1999-01-01", "capabilities": {}})
    assert body["result"]["protocolVersion"] == "2025-11-25"


def test_initialize_without_a_version_is_invalid_params() -> None:
    status, _, body = request("initialize", {"capabilities": {}})
    assert status == 200
    assert body["error"]["code"] == -32602


@pytest.mark.parametrize("version", HANDSHAKE_PROTOCOL_VERSIONS)
def test_supported_header_versions_pass(version: str) -> None:
    status, _, _ = request("ping", headers={"MCP-Protocol-Version": version})
    assert status == 200


def test_unsupported_header_version_is_400_with_the_supported_list() -> None:
    status, _, body = request("ping", request_id=4, headers={"mcp-protocol-version": "2099-01-01"})
    assert status == 400
    assert body["id"] == 4
    data = mcp_types.UnsupportedProtocolVersionErrorData.model_validate(body["error"]["data"])
    assert data.supported == list(SUPPORTED_PROTOCOL_VERSIONS)
    assert data.requested == "2099-01-01"


def test_discover_without_the_2026_header_or_meta_is_an_unknown_method() -> None:
    status, _, body = request("server/discover", {})
    assert (status, body["error"]["code"]) == (200, -32601)


# --- tools --------------------------------------------------------------------------------------


def test_tools_list_comes_from_the_registry() -> None:
    status, _, body = request("tools/list")
    assert status == 200
    tools = mcp_types.ListToolsResult.model_validate(body["result"]).tools
    assert [t.name for t in tools] == ["toy_add", "toy_echo", "toy_fail"]
    by_name = {t.name: t for t in tools}
    echo = by_name["toy_echo"]
    assert echo.description == "Echo the text back, with the protocol the call arrived through."
    # The Caller parameter is the server's business, never part of the public schema.
    assert set(echo.input_schema["properties"]) == {"text"}
    assert echo.output_schema == Echoed.model_json_schema()
    assert by_name["toy_add"].input_schema["required"] == ["a"]


def test_tools_call_returns_structured_and_text_content() -> None:
    status, _, body = call("toy_add", {"a": 2, "b": 40})
    assert status == 200
    result = mcp_types.CallToolResult.model_validate(body["result"])
    assert result.is_error is False
    assert result.structured_content == {"total": 42}
    assert json.loads(body["result"]["content"][0]["text"]) == {"total": 42}
    assert body["result"]["content"][0]["type"] == "text"


def test_tools_get_an_mcp_caller() -> None:
    _, _, body = call("toy_echo", {"text": "héllo"})
    assert body["result"]["structuredContent"] == {"text": "héllo", "protocol": "mcp"}


def invalid_arguments_text(body: Any) -> str:
    """The text of a tool result that reports invalid arguments (SEP-1303), checking its shape."""
    result = mcp_types.CallToolResult.model_validate(body["result"])
    assert result.is_error is True
    assert result.structured_content is None and "structuredContent" not in body["result"]
    assert [block.type for block in result.content] == ["text"]
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("Invalid arguments for toy_add:\n")
    return text


def test_missing_arguments_mean_an_empty_object() -> None:
    _, _, body = request("tools/call", {"name": "toy_add"})
    assert "- a: Field required" in invalid_arguments_text(body)


@pytest.mark.parametrize(
    ("arguments", "lines"),
    [
        ({"a": "not a number"}, ["- a: Input should be a valid integer, unable to parse string as an integer"]),
        ({"b": 1}, ["- a: Field required"]),
        ({"a": 1, "extra": True}, ["- extra: Extra inputs are not permitted"]),
        ({"a": 1.5, "b": [2], "c": 0}, ["- a: Input should be a valid integer, got a number with a fractional part",
                                        "- b: Input should be a valid integer", "- c: Extra inputs are not permitted"]),
    ],
)
def test_invalid_arguments_are_error_results_the_model_can_read(arguments: Any, lines: list[str]) -> None:
    status, _, body = call("toy_add", arguments)
    assert status == 200 and "error" not in body
    text = invalid_arguments_text(body)
    # Field by field, one line each, in the words pydantic's validation uses.
    assert text.splitlines()[1:-1] == lines
    assert text.endswith("\nFix these and call the tool again.")


@pytest.mark.parametrize("arguments", [[1, 2], "a=1", 7])
def test_arguments_that_are_not_an_object_are_invalid_params(arguments: Any) -> None:
    # Not a tools/call request at all (the protocol's schema says an object): a JSON-RPC error.
    status, _, body = call("toy_add", arguments)
    assert status == 200
    assert body["error"]["code"] == -32602
    assert "toy_add" in body["error"]["message"]


def test_unknown_and_rest_only_tools_are_invalid_params() -> None:
    for name in ("no_such_tool", "toy_rest_only"):
        status, _, body = call(name, {})
        assert status == 200
        assert body["error"]["code"] == -32602
        assert name in body["error"]["message"]
    _, _, body = request("tools/call", {"arguments": {}})
    assert body["error"]["code"] == -32602


def test_api_errors_from_the_tool_are_error_results() -> None:
    cases = [("not_found", "There is no such thing."), ("invalid", "The tool itself rejected this.")]
    for kind, message in cases:
        status, _, body = call("toy_fail", {"kind": kind})
        assert status == 200
        result = body["result"]
        assert result == {"content": [{"type": "text", "text": message}], "isError": True}


def test_unexpected_failures_are_generic_error_results_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="chalice_app.mcp_endpoint"):
        _, _, body = call("toy_fail", {"kind": "crash"})
    result = body["result"]
    assert result["isError"] is True
    assert "structuredContent" not in result
    assert "secret internals" not in result["content"][0]["text"]
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


# --- server description -------------------------------------------------------------------------


def test_initialize_answers_instructions_and_the_installed_version() -> None:
    _, _, body = request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}})
    result = body["result"]
    assert result["serverInfo"] == {"name": "pb-fm-webpage", "title": "pb-fm live webpage",
                                    "version": importlib.metadata.version("pb-fm-webpage")}
    assert "webpage_create_session" in result["instructions"] and "page_url" in result["instructions"]
    # Exactly what is implemented: no subscriptions, no list-changed notifications; MCP Apps (SEP-1724).
    assert result["capabilities"] == {"tools": {"listChanged": False}, "prompts": {"listChanged": False},
                                      "resources": {"listChanged": False, "subscribe": False},
                                      "completions": {}, "logging": {},
                                      "extensions": {"io.modelcontextprotocol/ui": {}}}


def test_the_packaged_version_is_the_project_version() -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert PACKAGED_VERSION == project["version"] == importlib.metadata.version("pb-fm-webpage")


def test_tools_carry_titles_and_all_four_hints() -> None:
    _, _, body = request("tools/list")
    tools = {t["name"]: t for t in body["result"]["tools"]}
    assert tools["toy_add"]["title"] == "Add"
    assert tools["toy_add"]["annotations"] == {"title": "Add", "readOnlyHint": True, "destructiveHint": False,
                                               "idempotentHint": True, "openWorldHint": False}
    # The spec's defaults for a tool that may do anything.
    assert tools["toy_fail"]["annotations"] == {"title": "Fail", "readOnlyHint": False, "destructiveHint": True,
                                                "idempotentHint": False, "openWorldHint": False}


def test_every_product_tool_declares_its_title_and_hints() -> None:
    from chalice_app import operations  # noqa: F401  (registers the operations)
    from chalice_app.registry import registry

    tools = registry.operations("mcp")
    assert tools
    assert [op.name for op in tools if op.title is None or op.hints is None] == []
    open_world = {op.name for op in tools if op.hints and op.hints.open_world}
    # Exactly the tools that call Figure Markets reach outside this server.
    assert open_world == {"webpage_update_hash_price_display", "webpage_store_price_data", "webpage_get_hash_price"}
    destructive = {op.name for op in tools if op.hints and op.hints.to_mcp()["destructiveHint"]}
    assert destructive == {"webpage_end_session"}
    read_only = {op.name for op in tools if op.hints and op.hints.read_only}
    assert read_only == {"webpage_get_page_state", "webpage_list_sessions", "webpage_get_hash_price",
                         "webpage_get_session_status", "webpage_get_session_participants",
                         "webpage_generate_s3_key"}


def test_a_tool_without_declared_hints_gets_the_cautious_defaults() -> None:
    bare = Registry()

    @bare.api_function(("mcp",))
    def bare_tool() -> Total:
        """Do something."""
        return Total(total=0)

    entry = handle_mcp(bare, SETTINGS, method="POST", headers={}, raw_body=json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode())
    tool = json.loads(entry.body)["result"]["tools"][0]
    assert tool["title"] == "Do something."
    assert tool["annotations"]["destructiveHint"] is True and tool["annotations"]["readOnlyHint"] is False


@pytest.mark.parametrize("level", ["debug", "warning", "emergency"])
def test_logging_set_level_is_accepted(level: str) -> None:
    assert request("logging/setLevel", {"level": level})[2]["result"] == {}


def test_logging_set_level_refuses_unknown_levels() -> None:
    assert request("logging/setLevel", {"level": "loud"})[2]["error"]["code"] == -32602


# --- the 2026-07-28 revision --------------------------------------------------------------------

MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {}}


def modern(method: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
           name: str | None = None) -> Any:
    sent = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if name is not None:
        sent["Mcp-Name"] = name
    return request(method, {**(params or {}), "_meta": MODERN_META}, headers={**sent, **(headers or {})})


def test_discover_describes_the_server() -> None:
    status, _, body = modern("server/discover")
    assert status == 200
    result = mcp_types.DiscoverResult.model_validate(body["result"])
    assert set(result.supported_versions) == set(SUPPORTED_PROTOCOL_VERSIONS)
    assert result.instructions is not None and "webpage_get_page_state" in result.instructions
    assert result.capabilities.tools is not None and result.capabilities.resources is not None
    # logging/setLevel is gone in 2026-07-28, and we send no log messages.
    assert result.capabilities.logging is None
    assert (body["result"]["resultType"], body["result"]["cacheScope"]) == ("complete", "public")
    assert body["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "pb-fm-webpage"


def test_modern_results_carry_result_type_server_info_and_cache_hints() -> None:
    _, _, body = modern("tools/list")
    result = body["result"]
    assert result["resultType"] == "complete" and result["ttlMs"] > 0 and result["cacheScope"] == "public"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["title"] == "pb-fm live webpage"
    _, _, called = modern("tools/call", {"name": "toy_add", "arguments": {"a": 1}}, name="toy_add")
    assert called["result"]["structuredContent"] == {"total": 1}
    assert called["result"]["resultType"] == "complete"
    assert "cacheScope" not in called["result"]


@pytest.mark.parametrize(("params", "headers", "code", "status"), [
    ({}, {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}, -32602, 400),
    ({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
     {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}, -32602, 400),
    ({"_meta": MODERN_META}, {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "prompts/list"}, -32020, 400),
    ({"_meta": MODERN_META}, {"MCP-Protocol-Version": "2026-07-28"}, -32020, 400),
    ({"_meta": MODERN_META}, {"MCP-Protocol-Version": "2025-11-25", "Mcp-Method": "tools/list"}, -32020, 400),
    ({"_meta": {**MODERN_META, "io.modelcontextprotocol/protocolVersion": "2030-01-01"}},
     {"MCP-Protocol-Version": "2030-01-01", "Mcp-Method": "tools/list"}, -32022, 400),
])
def test_the_modern_envelope_is_checked(params: dict[str, Any], headers: dict[str, str], code: int,
                                        status: int) -> None:
    got_status, _, body = request("tools/list", params, headers=headers)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert body["id"] == 1


def test_mcp_name_must_match_the_tool() -> None:
    status, _, body = modern("tools/call", {"name": "toy_add", "arguments": {"a": 1}}, name="toy_echo")
    assert (status, body["error"]["code"]) == (400, -32020)


@pytest.mark.parametrize("method", ["initialize", "ping", "logging/setLevel", "no/such"])
def test_handshake_methods_are_unknown_in_2026(method: str) -> None:
    status, _, body = modern(method, {"protocolVersion": "2025-11-25", "level": "info"})
    assert (status, body["error"]["code"]) == (404, -32601)


# --- CORS ---------------------------------------------------------------------------------------

ALLOWED = Settings(allowed_origins=("https://app.example.com",))


def preflight(origin: str, requested: str = "") -> Any:
    return handle_mcp(reg, ALLOWED, method="OPTIONS", headers={
        "Origin": origin, "Host": "api.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": requested}, raw_body=None)


def test_preflight_from_an_allowed_origin_grants_the_mcp_headers() -> None:
    response = preflight("https://app.example.com", "mcp-protocol-version, authorization, Mcp-Param-Region, x-evil")
    assert response.status_code == 204
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert headers["Vary"] == "Origin"
    granted = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name", "authorization",
            "content-type", "mcp-param-region"} <= granted
    assert "x-evil" not in granted
    assert "Mcp-Session-Id" in headers["Access-Control-Expose-Headers"]
    assert "MCP-Protocol-Version" in headers["Access-Control-Expose-Headers"]


def test_preflight_from_another_origin_is_refused_without_cors_headers() -> None:
    response = preflight("https://evil.example")
    assert response.status_code == 403
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_preflight_needs_no_token() -> None:
    settings = Settings(allowed_origins=("https://app.example.com",), mcp_token="t")
    response = handle_mcp(reg, settings, method="OPTIONS", headers={"Origin": "https://app.example.com"},
                          raw_body=None)
    assert response.status_code == 204


def test_answers_to_an_allowed_origin_carry_cors_headers_even_errors() -> None:
    settings = Settings(allowed_origins=("https://app.example.com",), mcp_token="t")
    status, headers, _ = request("ping", settings=settings, headers={"Origin": "https://app.example.com",
                                                                     "Host": "api.example.com"})
    assert status == 401
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    _, plain, _ = request("ping")
    assert "Access-Control-Allow-Origin" not in plain
