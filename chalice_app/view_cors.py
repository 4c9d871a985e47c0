"""Who may reach the page's runtime and browser API from a chat host's sandbox: CORS for exact origins.

The session view (``mcp_app_view``) runs at a chat host's sandbox origin, so everything it loads
from us is cross-origin: the runtime (PyScript's module scripts and Pyodide's ``fetch()``es are
CORS requests), the page's Python files, and the browser operations it calls. Those — and only
those — answer CORS, for the origins listed in ``settings.view_origins`` and no other (never ``*``),
and never with credentials: a view is identified by its token header, not by a cookie.

Pure functions over header values; ``rest`` and ``static_site`` apply them.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from chalice import Response

from chalice_app.cookies import TAB_HEADER
from chalice_app.settings import Settings
from chalice_app.view_tokens import HEADER as TOKEN_HEADER

ALLOW_HEADERS = ("Content-Type", TAB_HEADER, TOKEN_HEADER)
# The renewed token comes back in this header; a cross-origin script only sees exposed headers.
EXPOSE_HEADERS = TOKEN_HEADER
MAX_AGE_S = 600


def _normalise(origin: str) -> str | None:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}" + (f":{port}" if port is not None else "")


def view_origin(headers: Mapping[str, str], settings: Settings) -> str | None:
    """The request's ``Origin`` when it is one of the configured view origins, else None."""
    lowered = {name.lower(): value for name, value in headers.items()}
    origin = lowered.get("origin")
    if not origin or not settings.view_origins:
        return None
    normalised = _normalise(origin)
    if normalised is None or normalised not in {_normalise(o) for o in settings.view_origins}:
        return None
    return origin.strip()


def cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSE_HEADERS, "Vary": "Origin"}


def preflight(origin: str | None, methods: str) -> Response:
    """The answer to a CORS preflight: 204 for a view origin, 403 (no CORS headers) for any other."""
    if origin is None:
        return Response(body="", status_code=403, headers={"Content-Type": "text/plain; charset=utf-8",
                                                           "Vary": "Origin"})
    return Response(body="", status_code=204, headers={
        **cors_headers(origin),
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": ", ".join(ALLOW_HEADERS),
        "Access-Control-Max-Age": str(MAX_AGE_S),
    })
