"""The live page inside the chat: the session's view as an MCP App (extension ``io.modelcontextprotocol/ui``).

A chat host that speaks MCP Apps reads our ``ui://`` resource (HTML, ``text/html;profile=mcp-app``),
shows it in a sandboxed iframe beside the result of a tool that names it in ``_meta.ui.resourceUri``
and hands it that tool's input and result. The view then opens the session the result names and
runs the page's own Python (``web_py``: the same SessionManager, DualQueueProcessor and renderer
as every browser), so it shows exactly what the browsers show and follows them live.

What this module declares, and why:

- **The resource** (``VIEW_URI``): one HTML document for every session (the session comes with the
  tool result), built from ``web_static/view.html`` with absolute URLs to our origin. Its PyScript
  config is ``pyscript.toml`` made absolute (the one list of page modules), so the interpreter is
  our Pyodide, never a CDN.
- **``_meta.ui.csp``**: exactly the origins the view reaches, no wildcard: ours (scripts, styles
  and ``fetch()``es: Pyodide loads its lock file, stdlib and wasm with ``fetch``), the asset base
  when the runtime lives in S3, and the public AWS endpoints it long-polls and reads documents
  from (the local gateway; SQS and the bucket's S3 hosts on AWS). Hosts build the iframe's CSP
  from it; declaring less breaks the view, more is never needed.
- **Tools** (``tool_meta``): the tools that show or change a session link the view; every tool
  that changes anything is ``visibility: ["model"]``, so a host refuses the view (an untrusted
  iframe) calling it through the host's own, authorised connection. Only read-only tools stay
  callable by the app; the view needs none but ``webpage_get_page_state`` (to renew its token).
- **The grant** (``result_meta``): a view token (``view_tokens``) and where to use it, in the tool
  result's ``_meta`` — never in text a model reads. The text content and the absolute page link
  stay in every result, so hosts without MCP Apps lose nothing.

Limits no server can lift: PyScript needs ``'unsafe-eval'`` (it calls ``Function()``) and Pyodide
WebAssembly compilation. The extension's reference host allows both; a host that builds the CSP
strictly from the specification's text allows neither, and a resource cannot ask for them. The
view then says so and links to the session page (``web_static/view_bridge.js``).

The Lambda runtime does not import ``mcp``: the constants below are the extension's, checked
against the ``mcp`` SDK's ``mcp.server.apps`` by the tests.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from chalice_app import view_tokens
from chalice_app.page_links import PageLinks
from chalice_app.registry import Operation
from chalice_app.settings import Settings
from chalice_app.static_site import (
    VIEW_ENTRY_SCRIPT,
    absolute_pyscript_config,
    render_template,
    runtime_url,
    s3_origins,
    sqs_origins,
)
from web_py.view_grant import ViewGrant

EXTENSION_ID = "io.modelcontextprotocol/ui"
MIME_TYPE = "text/html;profile=mcp-app"
VIEW_URI = "ui://pb-fm-webpage/session-view"
VIEW_NAME = "session-view"
VIEW_TITLE = "Live page (in chat)"
VIEW_DESCRIPTION = ("The session's live page inside the chat: the same price, content and participants every "
                    "browser of the session shows, kept in step with them.")
# The view renews an expired token by calling this tool through the host (read-only, so app-visible).
RENEWAL_TOOL = "webpage_get_page_state"


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def csp(settings: Settings, links: PageLinks) -> dict[str, list[str]]:
    """``_meta.ui.csp``: the exact origins the view loads from and connects to."""
    ours = origin_of(links.base_url)
    assets = origin_of(settings.asset_base_url) if settings.asset_base_url else None
    loads = [o for o in (ours, assets) if o]
    connects = [*loads, *s3_origins(settings), *sqs_origins(settings)]
    return {"resourceDomains": list(dict.fromkeys(loads)), "connectDomains": list(dict.fromkeys(connects))}


def ui_meta(settings: Settings, links: PageLinks) -> dict[str, Any]:
    return {"ui": {"csp": csp(settings, links), "prefersBorder": True}}


def tool_meta(operation: Operation) -> dict[str, Any] | None:
    """A tool's ``_meta.ui``: the view it shows its result in, and who may call it (model, app)."""
    ui: dict[str, Any] = {}
    if operation.view:
        ui["resourceUri"] = VIEW_URI
    read_only = operation.hints is not None and operation.hints.read_only
    if operation.view or not read_only:
        ui["visibility"] = ["model", "app"] if read_only else ["model"]
    return {"ui": ui} if ui else None


def resource_entry(settings: Settings, links: PageLinks) -> dict[str, Any]:
    """The view's entry in ``resources/list`` (its ``_meta.ui`` lets a host review it at connect time)."""
    return {"uri": VIEW_URI, "name": VIEW_NAME, "title": VIEW_TITLE, "description": VIEW_DESCRIPTION,
            "mimeType": MIME_TYPE, "_meta": ui_meta(settings, links)}


def read(settings: Settings, links: PageLinks) -> dict[str, Any]:
    """``resources/read`` of the view: the HTML, with the same ``_meta.ui`` on the content item."""
    return {"contents": [{"uri": VIEW_URI, "mimeType": MIME_TYPE, "text": view_html(settings, links),
                          "_meta": ui_meta(settings, links)}]}


def view_html(settings: Settings, links: PageLinks) -> str:
    base = links.base_url
    if origin_of(base) is None:
        # Without our own absolute address the view could load nothing; say so rather than break.
        return render_template("view_unavailable.html", {})
    config = absolute_pyscript_config(settings, base)
    return render_template("view.html", {
        "base": base,
        "page_css": f"{base}/static/page.css",
        "bridge_js": f"{base}/static/view_bridge.js",
        "pyscript_core_js": runtime_url(settings, "pyscript", "core.js", base),
        "pyscript_core_css": runtime_url(settings, "pyscript", "core.css", base),
        "pyscript_config": json.dumps(config, separators=(",", ":")),
        "entry_script": f"{base}/web_py/{VIEW_ENTRY_SCRIPT}",
        "renewal_tool": RENEWAL_TOOL,
    })


def result_meta(operation: Operation, structured: dict[str, Any], settings: Settings, links: PageLinks,
                now: float) -> dict[str, Any] | None:
    """The grant a view-linked tool's result carries in ``_meta``: its session, token and addresses."""
    session_id = structured.get("session_id")
    if not operation.view or not isinstance(session_id, str) or origin_of(links.base_url) is None:
        return None
    token = view_tokens.issue(settings.cookie_secret, session_id, now=now, lifetime_s=settings.view_token_lifetime_s)
    return ViewGrant(session_id=session_id, page_url=links.page_url(session_id), api_base=links.base_url,
                     token=token.value, expires_in_s=token.expires_in_s(now)).to_meta()


def capability() -> dict[str, Any]:
    """What the server advertises under ``capabilities.extensions`` (SEP-1724), as the SDK's Apps does."""
    return {EXTENSION_ID: {}}
