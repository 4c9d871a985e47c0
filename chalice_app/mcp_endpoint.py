"""MCP over one Chalice route: stateless Streamable HTTP with plain JSON responses.

Every POST carries one JSON-RPC message and gets one JSON answer; there is no SSE stream and no
session id, so any Lambda instance can answer any request. Tools are read from the registry
(``registry.operations("mcp")``); nothing here knows about a particular operation.

HTTP status policy (the 1.x Python client crashes on a 4xx that answers a request it could
correlate, so JSON-RPC errors for a request with a usable id go back with 200):

- 405 for GET/DELETE (we offer no SSE stream and no sessions), with ``Allow: POST``.
- 403 for a disallowed ``Origin``, 401 for a missing or wrong bearer token.
- 400 when no id can be correlated (bad JSON, nesting deeper than ``json_body.MAX_DEPTH``, not a
  JSON-RPC object, batches) and for an unsupported ``MCP-Protocol-Version`` header (the transport
  spec requires 400 there); 413 for a body over ``mcp_body_limit`` (it is never parsed).
- 202 with an empty body for notifications and for responses a client sends us.

Origin policy (DNS-rebinding defence; clients outside browsers send no ``Origin`` at all):
an ``Origin`` is accepted when it is listed in ``settings.allowed_origins``, or when both the
origin and the request's own ``Host`` are loopback names (a page on this machine talking to a
server on this machine, e.g. local development or the Inspector's web UI). A rebinding page keeps
its own hostname in ``Origin``, so it never passes; a deployed server is never reached on a
loopback ``Host``, so loopback origins only count there when listed explicitly. ``Origin: null``
and anything that is not http(s) are rejected.

Leniencies, on purpose: the ``Accept`` header is not enforced (we only ever answer JSON, which
every client accepts), and ``initialize`` is not required before other requests (a stateless
server has nowhere to remember it). A POST whose ``Content-Type`` is not JSON is refused by
Chalice itself with 415 before it reaches this module.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from chalice import Chalice, Response

from chalice_app.caller import Caller
from chalice_app.errors import ApiError, InvalidInput, PayloadTooLarge
from chalice_app.json_body import BodyTooDeep, parse_json_body
from chalice_app.registry import Operation, Registry, ServiceProvider
from chalice_app.settings import Settings

logger = logging.getLogger(__name__)

SERVER_NAME = "pb-fm-webpage"
# Kept by hand: the Lambda zip vendors the package without its dist-info, so importlib.metadata
# cannot be asked there.
SERVER_VERSION = "0.1.0"

# The initialize-handshake versions, oldest first. 2026-07-28 (the server/discover era) is left out
# on purpose: the 2.x client probes it first and falls back to initialize when we refuse it.
SUPPORTED_PROTOCOL_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[-1]
# The transport spec: a request without the header comes from a client that predates it.
DEFAULT_HEADER_VERSION = "2025-03-26"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# From the 2026-07-28 revision; its data lists what we do support, which is exactly what lets a
# 2.x client's server/discover probe fall back to the initialize handshake.
UNSUPPORTED_PROTOCOL_VERSION = -32022

JSON_HEADERS = {"Content-Type": "application/json"}
_LOOPBACK_NAMES = frozenset({"localhost"})
_UNEXPECTED_TOOL_FAILURE = "The tool failed unexpectedly; the server logged the details."

RequestId = str | int


class _RpcError(Exception):
    """A JSON-RPC error to send back; raised inside dispatch so each branch stays linear."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def handle_mcp(
    registry: Registry,
    settings: Settings,
    *,
    method: str,
    headers: Mapping[str, str],
    raw_body: bytes | None,
    services: ServiceProvider | None = None,
) -> Response:
    """Answer one HTTP request made to the MCP endpoint (``services``: for tools that declare one)."""
    lowered = {name.lower(): value for name, value in headers.items()}

    if method.upper() != "POST":
        return _http_error(405, INVALID_REQUEST, "This MCP endpoint accepts POST only.", {"Allow": "POST"})

    origin = lowered.get("origin")
    if origin is not None and not _origin_allowed(origin, lowered.get("host"), settings.allowed_origins):
        return _http_error(403, INVALID_REQUEST, f"Origin {origin!r} is not allowed.")

    if settings.mcp_token is not None and not _token_ok(lowered.get("authorization"), settings.mcp_token):
        challenge = 'Bearer error="invalid_token"' if lowered.get("authorization") else "Bearer"
        return _http_error(
            401, INVALID_REQUEST, "A valid bearer token is required.", {"WWW-Authenticate": challenge}
        )

    try:
        message = parse_json_body(raw_body, limit=mcp_body_limit(settings))
    except PayloadTooLarge as exc:
        return _http_error(413, INVALID_REQUEST, f"Request too large: {exc.message}.")
    except BodyTooDeep as exc:
        return _http_error(400, PARSE_ERROR, f"Parse error: {exc.message}.")
    except InvalidInput:
        return _http_error(400, PARSE_ERROR, "Parse error: the body is not valid JSON.")

    if isinstance(message, list):
        return _http_error(
            400, INVALID_REQUEST, "Batch requests are not supported; send one message per POST."
        )
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _http_error(400, INVALID_REQUEST, "Invalid Request: expected one JSON-RPC 2.0 object.")

    has_id = "id" in message
    request_id = message.get("id")
    if has_id and not _usable_id(request_id):
        return _http_error(400, INVALID_REQUEST, "Invalid Request: id must be a string or an integer.")

    header_version = lowered.get("mcp-protocol-version")
    if header_version is not None and header_version not in SUPPORTED_PROTOCOL_VERSIONS:
        # Carry the id when we have one so the client can correlate the refusal.
        return _json_response(
            400,
            _error_body(
                request_id if has_id else None,
                UNSUPPORTED_PROTOCOL_VERSION,
                f"Unsupported MCP-Protocol-Version {header_version!r}.",
                {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": header_version},
            ),
        )

    rpc_method = message.get("method")
    if not has_id:
        if not isinstance(rpc_method, str):
            return _http_error(400, INVALID_REQUEST, "Invalid Request: a notification needs a string method.")
        # Notifications (initialized, cancelled, ...) need no action from a stateless server.
        return Response(body="", status_code=202, headers=dict(JSON_HEADERS))
    if rpc_method is None and ("result" in message or "error" in message):
        # A response to a server→client request; we never send those, so just acknowledge it.
        return Response(body="", status_code=202, headers=dict(JSON_HEADERS))
    assert request_id is not None  # _usable_id rejects null
    if not isinstance(rpc_method, str):
        return _json_response(
            200, _error_body(request_id, INVALID_REQUEST, "Invalid Request: method must be a string.")
        )

    params = message.get("params")
    try:
        if params is not None and not isinstance(params, dict):
            raise _RpcError(INVALID_PARAMS, "params must be a JSON object.")
        result = _dispatch(registry, rpc_method, params or {}, services)
    except _RpcError as exc:
        return _json_response(200, _error_body(request_id, exc.code, exc.message, exc.data))
    return _json_response(200, {"jsonrpc": "2.0", "id": request_id, "result": result})


def mount_mcp(
    app: Chalice,
    registry: Registry,
    settings_provider: Callable[[], Settings],
    *,
    path: str = "/mcp",
    services: ServiceProvider | None = None,
) -> None:
    """Register the MCP route on ``app``; the application and the tests use exactly this glue."""

    # GET and DELETE are routed too so that they get our 405 with Allow, not API Gateway's 403.
    @app.route(path, methods=["POST", "GET", "DELETE"], name="mcp_endpoint")
    def mcp_endpoint() -> Response:
        request = app.current_request
        assert request is not None  # Chalice sets it before calling a view
        raw = request.raw_body
        try:
            return handle_mcp(
                registry,
                settings_provider(),
                method=request.method,
                headers=request.headers,
                raw_body=raw.encode("utf-8") if isinstance(raw, str) else raw,
                services=services,
            )
        except Exception:
            # A bug, not bad input; answered in JSON-RPC so that a client can still report it.
            logger.exception("MCP request failed")
            return _http_error(500, INTERNAL_ERROR, "Internal error; the server log has the details.")


def _dispatch(registry: Registry, method: str, params: dict[str, Any],
              services: ServiceProvider | None = None) -> dict[str, Any]:
    if method == "initialize":
        return _initialize(params)
    if method == "ping":
        return {}
    if method == "tools/list":
        # One page holds every tool: the registry is small and fixed at import time.
        return {"tools": [_tool_entry(op) for op in registry.operations("mcp")]}
    if method == "tools/call":
        return _call_tool(registry, params, services)
    raise _RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")


def _initialize(params: dict[str, Any]) -> dict[str, Any]:
    requested = params.get("protocolVersion")
    if not isinstance(requested, str):
        raise _RpcError(INVALID_PARAMS, "initialize: protocolVersion must be a string.")
    version = requested if requested in SUPPORTED_PROTOCOL_VERSIONS else LATEST_PROTOCOL_VERSION
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
    }


def _tool_entry(op: Operation) -> dict[str, Any]:
    return {
        "name": op.name,
        "description": op.description,
        "inputSchema": op.input_schema(),
        "outputSchema": op.output_schema(),
    }


def _call_tool(registry: Registry, params: dict[str, Any], services: ServiceProvider | None = None
               ) -> dict[str, Any]:
    name = params.get("name")
    if not isinstance(name, str):
        raise _RpcError(INVALID_PARAMS, "tools/call: name must be a string.")
    op = registry.get(name, "mcp")
    if op is None:
        raise _RpcError(INVALID_PARAMS, f"Unknown tool: {name}")
    raw_arguments = params.get("arguments")
    if raw_arguments is not None and not isinstance(raw_arguments, dict):
        # Not a tools/call request at all (the schema says an object): the client's mistake.
        raise _RpcError(INVALID_PARAMS, f"tools/call: arguments of {name} must be a JSON object.")
    try:
        arguments = op.parse_arguments(raw_arguments)
    except InvalidInput as exc:
        # SEP-1303 (2025-11-25): arguments that miss the inputSchema are a tool result the model
        # reads and corrects, not a JSON-RPC error an SDK raises and the host swallows.
        return _error_result(_invalid_arguments_text(name, exc))

    try:
        # Revalidating guarantees structuredContent matches the advertised outputSchema (the 2.x
        # client checks it); an instance of the output model passes through untouched.
        output = op.output_model.model_validate(op.invoke(arguments, Caller(protocol="mcp"), services))
    except ApiError as exc:
        # A failure the model can read and act on: reported inside the result, not as an RPC error.
        return _error_result(exc.message)
    except Exception:
        logger.exception("MCP tool %s failed", name)
        return _error_result(_UNEXPECTED_TOOL_FAILURE)

    structured = output.model_dump(mode="json")
    return {
        # The text block serves clients that ignore structuredContent.
        "content": [{"type": "text", "text": json.dumps(structured, ensure_ascii=False)}],
        "structuredContent": structured,
        "isError": False,
    }


def _error_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _invalid_arguments_text(tool: str, error: InvalidInput) -> str:
    """One line per field that is wrong, in words a model can act on."""
    problems = error.details if isinstance(error.details, list) else []
    lines = [f"- {p['field']}: {p['problem']}" for p in problems if isinstance(p, dict)]
    if not lines:
        return error.message
    return f"Invalid arguments for {tool}:\n" + "\n".join(lines) + "\nFix these and call the tool again."


def mcp_body_limit(settings: Settings) -> int:
    """The largest /mcp body parsed: twice the message limit.

    The tools check their own content against ``max_message_bytes`` (as compact JSON) and answer a
    result the model can read; the envelope and a client's own encoding (indentation, escapes) need
    room on top, so the body cap only stops what no tool would accept anyway.
    """
    return 2 * settings.max_message_bytes


def _usable_id(value: Any) -> bool:
    # bool is an int subclass but never a valid id; 0 and "" are valid ids.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _token_ok(authorization: str | None, expected: str) -> bool:
    if authorization is None:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Bytes, because compare_digest refuses non-ASCII str and a client controls this value.
    return hmac.compare_digest(token.strip().encode("utf-8"), expected.encode("utf-8"))


def _normalise_origin(origin: str) -> str | None:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _is_loopback(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _origin_allowed(origin: str, host_header: str | None, allowed: tuple[str, ...]) -> bool:
    normalised = _normalise_origin(origin)
    if normalised is None:
        return False
    if normalised in {_normalise_origin(o) for o in allowed}:
        return True
    try:
        host_name = urlsplit(f"//{host_header}").hostname if host_header else None
    except ValueError:
        host_name = None
    return _is_loopback(urlsplit(normalised).hostname) and _is_loopback(host_name)


def _error_body(request_id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _http_error(
    status: int, code: int, message: str, extra_headers: Mapping[str, str] | None = None
) -> Response:
    return _json_response(status, _error_body(None, code, message), extra_headers)


def _json_response(
    status: int, body: dict[str, Any], extra_headers: Mapping[str, str] | None = None
) -> Response:
    headers: dict[str, str | list[str]] = dict(JSON_HEADERS)
    if extra_headers:
        headers.update(extra_headers)
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status, headers=headers)
