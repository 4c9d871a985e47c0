"""Who may call ``/mcp`` from a browser: the origin policy and CORS (see ``mcp_endpoint``'s docstring).

Pure functions over header values; the endpoint applies them before anything else (a preflight
carries no credentials, so it is answered before the bearer token is checked).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from chalice import Response

CORS_ALLOW_HEADERS = ("Content-Type", "Accept", "Authorization", "MCP-Protocol-Version", "Mcp-Session-Id",
                      "Mcp-Method", "Mcp-Name", "Last-Event-ID")
CORS_EXPOSE_HEADERS = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate"
CORS_MAX_AGE_S = 600
_LOOPBACK_NAMES = frozenset({"localhost"})


def preflight(headers: Mapping[str, str], allowed_methods: str) -> Response:
    """A CORS preflight (the origin was already checked): which methods and headers may follow."""
    requested = [h.strip() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()]
    allowed = {h.lower() for h in CORS_ALLOW_HEADERS}
    # Mcp-Param-* headers carry tool arguments (2026-07-28); their names depend on the tool.
    granted = [*CORS_ALLOW_HEADERS, *(h for h in requested if h.lower().startswith("mcp-param-")
                                      and h.lower() not in allowed)]
    return Response(body="", status_code=204, headers={
        "Access-Control-Allow-Methods": "POST, GET, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": ", ".join(granted),
        "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
        "Allow": allowed_methods,
    })


def cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin.strip(), "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
            "Vary": "Origin"}


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


def origin_allowed(origin: str, host_header: str | None, allowed: tuple[str, ...]) -> bool:
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
