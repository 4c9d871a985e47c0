"""MCP over one Chalice route: stateless Streamable HTTP with plain JSON responses.

Every POST carries one JSON-RPC message and gets one JSON answer; there is no SSE stream and no
session id, so any Lambda instance can answer any request. Tools are read from the registry
(``registry.operations("mcp")``); nothing here knows about a particular operation. Resources,
prompts, completions and the server's own description live in ``mcp_catalog``; the MCP Apps view
of a session (the tools' ``_meta.ui``, the grant in their results' ``_meta``) in ``mcp_app_view``.

Two protocol eras are served on the same route:

- the initialize handshake (``2024-11-05`` … ``2025-11-25``): ``initialize`` negotiates, later
  requests carry the ``MCP-Protocol-Version`` header;
- ``2026-07-28``: no handshake; ``server/discover`` describes the server and every request carries
  ``params._meta`` (protocol version, client capabilities) plus the ``MCP-Protocol-Version``,
  ``Mcp-Method`` and (for tools/call, prompts/get, resources/read) ``Mcp-Name`` headers, which must
  agree with the body (-32020 otherwise). Every result carries ``resultType`` and the server's
  identity in ``_meta``; list results say how long they may be cached. Errors of this era go back
  with the HTTP status the revision maps them to (400, or 404 for an unknown method).

A request is of the 2026 era when its header names that version or its ``_meta`` carries a
protocol version; anything else is handshake era.

HTTP status policy (the 1.x Python client crashes on a 4xx that answers a request it could
correlate, so JSON-RPC errors for a request with a usable id go back with 200):

- 405 for GET/DELETE (we offer no SSE stream and no sessions), with ``Allow: POST, OPTIONS``.
- 204 for a CORS preflight (``OPTIONS``) from an allowed origin, 403 from any other.
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

CORS: a response to an allowed ``Origin`` carries ``Access-Control-Allow-Origin`` for that origin
(never ``*``) and exposes the MCP headers, so browser-based clients (the Inspector's web UI in
direct mode) can call the endpoint; preflights are answered before authentication because a
browser never sends credentials on one.

Leniencies, on purpose: the ``Accept`` header is not enforced (we only ever answer JSON, which
every client accepts), and ``initialize`` is not required before other requests (a stateless
server has nowhere to remember it). A POST whose ``Content-Type`` is not JSON is refused by
Chalice itself with 415 before it reaches this module.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalice import Chalice, Response

from chalice_app import bearer, mcp_app_view, mcp_catalog
from chalice_app.caller import Caller
from chalice_app.errors import ApiError, InvalidInput, PayloadTooLarge
from chalice_app.json_body import BodyTooDeep, parse_json_body
from chalice_app.mcp_http import cors_headers, origin_allowed, preflight
from chalice_app.page_links import PageLinks, links_for_request
from chalice_app.registry import Operation, Registry, ServiceProvider, ToolHints
from chalice_app.sessions import SessionService
from chalice_app.settings import Settings

logger = logging.getLogger(__name__)

# The initialize-handshake versions, oldest first, and the handshake-free revisions.
HANDSHAKE_PROTOCOL_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_PROTOCOL_VERSIONS: tuple[str, ...] = ("2026-07-28",)
SUPPORTED_PROTOCOL_VERSIONS: tuple[str, ...] = HANDSHAKE_PROTOCOL_VERSIONS + MODERN_PROTOCOL_VERSIONS
LATEST_HANDSHAKE_VERSION = HANDSHAKE_PROTOCOL_VERSIONS[-1]
# The transport spec: a request without the header comes from a client that predates it.
DEFAULT_HEADER_VERSION = "2025-03-26"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002  # handshake era; 2026-07-28 retired it for -32602
# From the 2026-07-28 revision.
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022
# 2026-07-28: the HTTP status of a JSON-RPC error (anything else: 200 with the error in the body).
MODERN_ERROR_STATUS = {PARSE_ERROR: 400, INVALID_REQUEST: 400, INVALID_PARAMS: 400, HEADER_MISMATCH: 400,
                       UNSUPPORTED_PROTOCOL_VERSION: 400, METHOD_NOT_FOUND: 404}

PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"
# The body field each name-bearing method mirrors in the Mcp-Name header (2026-07-28).
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
# 2026-07-28 cache hints: lists that hold no caller-specific data may be shared; sessions may not.
_TTL_MS = 60_000
LOG_LEVELS = frozenset({"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"})

JSON_HEADERS = {"Content-Type": "application/json"}
ALLOWED_METHODS = "POST, OPTIONS"
_UNEXPECTED_TOOL_FAILURE = "The tool failed unexpectedly; the server logged the details."

RequestId = str | int


class _RpcError(Exception):
    """A JSON-RPC error to send back; raised inside dispatch so each branch stays linear."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


@dataclass(frozen=True)
class _Call:
    """What one request's handlers need: the app's parts and how this request was made."""

    registry: Registry
    services: ServiceProvider | None
    links: PageLinks
    modern: bool
    settings: Settings

    def service(self) -> SessionService:
        if self.services is None:
            raise _RpcError(INTERNAL_ERROR, "This endpoint was mounted without a SessionService.")
        return self.services()


def handle_mcp(
    registry: Registry,
    settings: Settings,
    *,
    method: str,
    headers: Mapping[str, str],
    raw_body: bytes | None,
    services: ServiceProvider | None = None,
    links: PageLinks | None = None,
) -> Response:
    """Answer one HTTP request made to the MCP endpoint (``services``: for tools that declare one).

    ``links`` builds the absolute page URLs results name (relative without it).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    origin = lowered.get("origin")
    if origin is not None and not origin_allowed(origin, lowered.get("host"), settings.allowed_origins):
        return _http_error(403, INVALID_REQUEST, f"Origin {origin!r} is not allowed.")
    response = _handle(registry, settings, method.upper(), lowered, raw_body, services, links or PageLinks())
    if origin is not None:
        response.headers.update(cors_headers(origin))
    return response


def _handle(registry: Registry, settings: Settings, method: str, lowered: dict[str, str], raw_body: bytes | None,
            services: ServiceProvider | None, links: PageLinks) -> Response:
    if method == "OPTIONS":
        return preflight(lowered, ALLOWED_METHODS)
    if method != "POST":
        return _http_error(405, INVALID_REQUEST, "This MCP endpoint accepts POST only.", {"Allow": ALLOWED_METHODS})

    authorization = lowered.get("authorization")
    if settings.mcp_token is not None and not bearer.token_matches(authorization, settings.mcp_token):
        return _http_error(401, INVALID_REQUEST, "A valid bearer token is required.",
                           {"WWW-Authenticate": bearer.challenge(authorization)})

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
    params = message.get("params")
    modern = header_version in MODERN_PROTOCOL_VERSIONS or _meta_version(params) is not None
    if not isinstance(rpc_method, str):
        return _rpc_error_response(request_id, _RpcError(INVALID_REQUEST, "Invalid Request: method must be a string."),
                                   modern)

    call = _Call(registry, services, links, modern, settings)
    try:
        if params is not None and not isinstance(params, dict):
            raise _RpcError(INVALID_PARAMS, "params must be a JSON object.")
        if modern:
            _check_modern_envelope(rpc_method, params or {}, lowered)
        result = _dispatch(call, rpc_method, params or {})
    except _RpcError as exc:
        return _rpc_error_response(request_id, exc, modern)
    if modern:
        result = {**result, "resultType": "complete",
                  "_meta": {**result.get("_meta", {}), SERVER_INFO_META: mcp_catalog.server_info()}}
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

    # GET and DELETE are routed too so that they get our 405 with Allow, not API Gateway's 403;
    # OPTIONS so that CORS preflights get our answer (allowed origins only).
    @app.route(path, methods=["POST", "GET", "DELETE", "OPTIONS"], name="mcp_endpoint")
    def mcp_endpoint() -> Response:
        request = app.current_request
        assert request is not None  # Chalice sets it before calling a view
        raw = request.raw_body
        try:
            settings = settings_provider()
            request_path = str((request.context or {}).get("path") or path)
            return handle_mcp(
                registry,
                settings,
                method=request.method,
                headers=request.headers,
                raw_body=raw.encode("utf-8") if isinstance(raw, str) else raw,
                services=services,
                links=links_for_request(settings.public_base_url, request.headers, request_path, path),
            )
        except Exception:
            # A bug, not bad input; answered in JSON-RPC so that a client can still report it.
            logger.exception("MCP request failed")
            return _http_error(500, INTERNAL_ERROR, "Internal error; the server log has the details.")


# -- protocol eras ---------------------------------------------------------------------------

def _meta_version(params: Any) -> Any:
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get(PROTOCOL_VERSION_META) if isinstance(meta, dict) else None


def _check_modern_envelope(method: str, params: dict[str, Any], headers: Mapping[str, str]) -> None:
    """The 2026-07-28 request checks, in the revision's order: envelope, headers, version."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise _RpcError(INVALID_PARAMS, f"params._meta must be an object carrying {PROTOCOL_VERSION_META!r} "
                                        f"and {CLIENT_CAPABILITIES_META!r}.")
    missing = [key for key in (PROTOCOL_VERSION_META, CLIENT_CAPABILITIES_META) if key not in meta]
    if missing:
        raise _RpcError(INVALID_PARAMS, f"params._meta is missing {', '.join(missing)}.")
    version = meta[PROTOCOL_VERSION_META]
    if headers.get("mcp-protocol-version") != version:
        raise _RpcError(HEADER_MISMATCH, "The MCP-Protocol-Version header does not match params._meta.")
    if headers.get("mcp-method") != method:
        raise _RpcError(HEADER_MISMATCH, "The Mcp-Method header does not match the request's method.")
    name_field = NAME_BEARING.get(method)
    if name_field is not None and params.get(name_field) is not None \
            and headers.get("mcp-name") != params.get(name_field):
        raise _RpcError(HEADER_MISMATCH, f"The Mcp-Name header does not match params.{name_field}.")
    if version not in MODERN_PROTOCOL_VERSIONS:
        raise _RpcError(UNSUPPORTED_PROTOCOL_VERSION, f"Unsupported protocol version {version!r}.",
                        {"supported": list(MODERN_PROTOCOL_VERSIONS), "requested": version})


def _capabilities(modern: bool) -> dict[str, Any]:
    capabilities: dict[str, Any] = {
        "tools": {"listChanged": False},
        "resources": {"listChanged": False, "subscribe": False},
        "prompts": {"listChanged": False},
        "completions": {},
        # MCP Apps: tools link a live view of their session (mcp_app_view).
        "extensions": mcp_app_view.capability(),
    }
    if not modern:
        # logging/setLevel is accepted (a stateless server keeps no level); 2026-07-28 dropped the method.
        capabilities["logging"] = {}
    return capabilities


def _cacheable(result: dict[str, Any], call: _Call, *, shared: bool) -> dict[str, Any]:
    if not call.modern:
        return result
    return {**result, "cacheScope": "public" if shared else "private", "ttlMs": _TTL_MS if shared else 0}


# -- methods ---------------------------------------------------------------------------------

_HANDSHAKE_ONLY = frozenset({"initialize", "ping", "logging/setLevel"})


def _dispatch(call: _Call, method: str, params: dict[str, Any]) -> dict[str, Any]:
    if call.modern and method in _HANDSHAKE_ONLY:
        raise _RpcError(METHOD_NOT_FOUND, f"Method not found in protocol 2026-07-28: {method}")
    if method == "server/discover":
        if not call.modern:
            raise _RpcError(METHOD_NOT_FOUND, "server/discover belongs to protocol 2026-07-28; use initialize.")
        return _cacheable({"supportedVersions": list(SUPPORTED_PROTOCOL_VERSIONS), "capabilities": _capabilities(True),
                           "instructions": mcp_catalog.INSTRUCTIONS}, call, shared=True)
    if method == "initialize":
        return _initialize(params)
    if method == "ping":
        return {}
    if method == "logging/setLevel":
        if params.get("level") not in LOG_LEVELS:
            raise _RpcError(INVALID_PARAMS, f"logging/setLevel: level must be one of {sorted(LOG_LEVELS)}.")
        return {}
    if method == "tools/list":
        # One page holds every tool: the registry is small and fixed at import time.
        return _cacheable({"tools": [_tool_entry(op) for op in call.registry.operations("mcp")]}, call, shared=True)
    if method == "tools/call":
        return _call_tool(call, params)
    if method == "resources/templates/list":
        return _cacheable({"resourceTemplates": mcp_catalog.resource_templates()}, call, shared=True)
    if method == "resources/list":
        return _cacheable({"resources": mcp_catalog.list_resources(call.service(), call.links)}, call, shared=False)
    if method == "resources/read":
        return _cacheable(_read_resource(call, params), call, shared=False)
    if method == "prompts/list":
        return _cacheable({"prompts": mcp_catalog.list_prompts()}, call, shared=True)
    if method == "prompts/get":
        return _get_prompt(params)
    if method == "completion/complete":
        try:
            return mcp_catalog.complete(call.service(), params.get("ref"), params.get("argument"))
        except mcp_catalog.PromptError as exc:
            raise _RpcError(INVALID_PARAMS, str(exc)) from None
    raise _RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")


def _initialize(params: dict[str, Any]) -> dict[str, Any]:
    requested = params.get("protocolVersion")
    if not isinstance(requested, str):
        raise _RpcError(INVALID_PARAMS, "initialize: protocolVersion must be a string.")
    version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    return {
        "protocolVersion": version,
        "capabilities": _capabilities(False),
        "serverInfo": mcp_catalog.server_info(),
        "instructions": mcp_catalog.INSTRUCTIONS,
    }


def _read_resource(call: _Call, params: dict[str, Any]) -> dict[str, Any]:
    uri = params.get("uri")
    if not isinstance(uri, str):
        raise _RpcError(INVALID_PARAMS, "resources/read: uri must be a string.")
    try:
        return mcp_catalog.read_resource(call.service(), call.links, uri)
    except mcp_catalog.UnknownResource as exc:
        raise _RpcError(INVALID_PARAMS if call.modern else RESOURCE_NOT_FOUND, str(exc), {"uri": uri}) from None
    except ApiError as exc:
        raise _RpcError(INVALID_PARAMS, exc.message, {"uri": uri}) from None


def _get_prompt(params: dict[str, Any]) -> dict[str, Any]:
    name, arguments = params.get("name"), params.get("arguments") or {}
    if not isinstance(name, str) or not isinstance(arguments, dict):
        raise _RpcError(INVALID_PARAMS, "prompts/get: name must be a string and arguments an object.")
    try:
        return mcp_catalog.get_prompt(name, arguments)
    except mcp_catalog.PromptError as exc:
        raise _RpcError(INVALID_PARAMS, str(exc)) from None


# -- tools -----------------------------------------------------------------------------------

def _tool_entry(op: Operation) -> dict[str, Any]:
    title = op.title or op.summary
    entry = {
        "name": op.name,
        "title": title,
        "description": op.description,
        "inputSchema": op.input_schema(),
        "outputSchema": op.output_schema(),
        "annotations": {"title": title, **(op.hints or ToolHints()).to_mcp()},
    }
    meta = mcp_app_view.tool_meta(op)
    return entry if meta is None else {**entry, "_meta": meta}


def _call_tool(call: _Call, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    if not isinstance(name, str):
        raise _RpcError(INVALID_PARAMS, "tools/call: name must be a string.")
    op = call.registry.get(name, "mcp")
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
        output = op.output_model.model_validate(
            op.invoke(arguments, Caller(protocol="mcp"), call.services, call.links))
    except ApiError as exc:
        # A failure the model can read and act on: reported inside the result, not as an RPC error.
        return _error_result(exc.message)
    except Exception:
        logger.exception("MCP tool %s failed", name)
        return _error_result(_UNEXPECTED_TOOL_FAILURE)

    structured = output.model_dump(mode="json")
    # The JSON text block serves clients that ignore structuredContent; a readable rendering, when
    # the operation has one, comes first for the model.
    content = [{"type": "text", "text": json.dumps(structured, ensure_ascii=False)}]
    if op.text is not None:
        content.insert(0, {"type": "text", "text": op.text(output)})
    result: dict[str, Any] = {"content": content, "structuredContent": structured, "isError": False}
    if op.view:
        # The live view's grant (its session and token) rides in _meta, out of the model's sight.
        now = call.services().now() if call.services is not None else time.time()
        grant = mcp_app_view.result_meta(op, structured, call.settings, call.links, now)
        if grant is not None:
            result["_meta"] = grant
    return result


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


def _error_body(request_id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _rpc_error_response(request_id: RequestId, error: _RpcError, modern: bool) -> Response:
    # Handshake era: 200, because the 1.x client crashes on a 4xx it can correlate; 2026-07-28 maps codes to statuses.
    status = MODERN_ERROR_STATUS.get(error.code, 200) if modern else 200
    return _json_response(status, _error_body(request_id, error.code, error.message, error.data))


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
