"""Absolute links to session pages, as the caller reached this server.

An assistant hands the user a link, so it needs the full URL, not ``/session/x``. The base is the
configured public URL (``PBFM_PUBLIC_BASE_URL``: a custom domain, or a proxy the request headers
cannot reveal) or else the request's own ``Host`` and ``X-Forwarded-Proto`` plus API Gateway's
stage prefix (``/api`` in front of every route on its default URL). A ``Host`` that is not a
plain host name (and port) gives relative links rather than a URL built from junk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from chalice_app.static_site import base_path

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]+\])"
                   r"(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class PageLinks:
    """Builds page URLs on one base (``""``: relative links, when the base is unknown)."""

    base_url: str = ""

    def page_url(self, session_id: str) -> str:
        return f"{self.base_url}/session/{session_id}"


def links_for_request(public_base_url: str | None, headers: Mapping[str, str], request_path: str,
                      route_path: str) -> PageLinks:
    """The links of a request that reached ``route_path`` (e.g. ``/mcp``) as ``request_path``."""
    if public_base_url:
        return PageLinks(public_base_url.rstrip("/"))
    lowered = {name.lower(): value for name, value in headers.items()}
    host = (lowered.get("host") or "").strip()
    if not _HOST.fullmatch(host):
        return PageLinks("")
    proto = (lowered.get("x-forwarded-proto") or "http").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else "http"
    return PageLinks(f"{scheme}://{host}{base_path(request_path, route_path)}")
