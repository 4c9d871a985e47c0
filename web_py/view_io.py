"""The session view inside an AI chat (an MCP App): the page's own loop, identified by a view token.

The chat host hands the view a tool result (``web_static/view_bridge.js`` receives it); its grant
(``view_grant``) names the session, our absolute API base and a view token. From there the view is
an ordinary page — the same ``SessionManager``, processor, reducer and renderer — whose transport
differs in three ways (all here):

- every call goes to our absolute base, cross-origin, without credentials, with the token header
  (a cookie would be a third-party cookie in the host's sandbox);
- an answer that carries a renewed token (a response header, like a cookie kept fresh by use)
  replaces the one in use;
- a token refused as expired (the chat was reopened long after) is renewed once through the host:
  the view calls the read-only ``webpage_get_page_state`` tool, whose result carries a fresh grant.

Nothing is saved across loads (each load of the iframe is its own participant with a fresh tab id),
so two renderings of one result never share queues. Pyodide only.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from web_py.browser_io import FetchHttp, is_null, run
from web_py.render import e
from web_py.session_manager import MemoryStore, SessionManager
from web_py.view_grant import TOKEN_HEADER, GrantError, ViewGrant

log = logging.getLogger("web_py.view_io")


class ViewHttp(FetchHttp):
    """``Http`` for the view: our absolute base, no credentials, the token header kept current."""

    def __init__(self, grant: ViewGrant, bridge: Any) -> None:
        super().__init__(grant.api_base, secrets.token_hex(8), credentials="omit")
        self.grant = grant
        self.bridge = bridge
        self.headers[TOKEN_HEADER] = grant.token
        self.renewals = 0

    def answered(self, headers: dict[str, str]) -> None:
        renewed = headers.get(TOKEN_HEADER.lower())
        if renewed:
            self.headers[TOKEN_HEADER] = renewed
            self.renewals += 1

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        status, data = await super().post(path, body)
        if status == 401 and token_expired(data) and await self.renew_through_host():
            status, data = await super().post(path, body)
        return status, data

    async def renew_through_host(self) -> bool:
        """A fresh grant from the host (a read-only tool call), for a token that expired meanwhile."""
        try:
            answer = await self.bridge.renew(self.grant.session_id)
            grant = ViewGrant.from_tool_result(json.loads(str(answer))) if not is_null(answer) else None
        except Exception as exc:  # the host refused, or does not proxy tool calls
            log.warning("could not renew the view token through the host: %s", exc)
            return False
        if grant is None or grant.session_id != self.grant.session_id:
            return False
        self.grant = grant
        self.headers[TOKEN_HEADER] = grant.token
        return True


def token_expired(answer: Any) -> bool:
    """The server refused our token only because it expired (the one refusal a new grant cures)."""
    details = answer.get("details") if isinstance(answer, dict) else None
    return isinstance(details, dict) and details.get("view_token") == "expired"


def show_notice(root: Any, message: str) -> None:
    """The view cannot open a session: say why (the bridge keeps the link to the page below)."""
    root.innerHTML = f'<section class="card notice" data-testid="view-notice"><p>{e(message)}</p></section>'
    root.dataset.viewState = "notice"


async def start_view(root: Any, bridge: Any) -> SessionManager | None:
    """Wait for the tool result, then run the page's loop on the session it names."""
    result = json.loads(str(await bridge.toolResult()))
    try:
        grant = ViewGrant.from_tool_result(result)
    except GrantError as exc:
        show_notice(root, str(exc))
        return None
    root.dataset.sessionId = grant.session_id
    root.dataset.viewState = "running"
    manager = SessionManager(grant.session_id, ViewHttp(grant, bridge), store=MemoryStore())
    return await run(root, manager)
