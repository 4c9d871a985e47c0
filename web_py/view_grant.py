"""What a tool result hands the session view inside a chat: which session, where, and its token.

The server puts a ``ViewGrant`` in the ``_meta`` of every tool result that links the view (never in
the text a model reads); the chat host passes the result to the view (``ui/notifications/
tool-result``), and the view opens that session with it. Defined once, here: the server writes
it with ``to_meta`` and the view reads it with ``from_tool_result``. Pure and stdlib-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web_py.messages import is_valid_session_id

# The key under the result's ``_meta`` (MCP ``_meta`` keys may carry a "prefix/" of their own).
GRANT_META = "pb-fm-webpage/view"
TOKEN_HEADER = "X-PBFM-View-Token"


class GrantError(ValueError):
    """The tool result carries no usable grant; the message says what the view can tell the user."""


@dataclass(frozen=True)
class ViewGrant:
    session_id: str
    # Absolute URL of the session page (for the link the view shows, and its fallback).
    page_url: str
    # Absolute prefix of our routes: "{api_base}/api/<operation>" (API Gateway's stage included).
    api_base: str
    token: str
    expires_in_s: int

    def to_meta(self) -> dict[str, Any]:
        return {GRANT_META: {"session_id": self.session_id, "page_url": self.page_url, "api_base": self.api_base,
                             "token": self.token, "expires_in_s": self.expires_in_s}}

    @classmethod
    def from_tool_result(cls, result: Any) -> ViewGrant:
        if not isinstance(result, dict):
            raise GrantError("The chat sent no tool result.")
        if result.get("isError"):
            raise GrantError("The tool call failed: " + (tool_text(result) or "no reason given."))
        meta = result.get("_meta")
        data = meta.get(GRANT_META) if isinstance(meta, dict) else None
        if not isinstance(data, dict):
            raise GrantError("This tool result does not name a live page.")
        session_id: Any = data.get("session_id")
        token: Any = data.get("token")
        page_url: Any = data.get("page_url")
        api_base: Any = data.get("api_base")
        expires: Any = data.get("expires_in_s")
        if not is_valid_session_id(session_id) or not isinstance(token, str) or not token:
            raise GrantError("The tool result names no valid session.")
        if not (_absolute(page_url) and _absolute(api_base)):
            raise GrantError("The server could not tell its own address; open the page from its link instead.")
        if not isinstance(expires, int) or isinstance(expires, bool) or expires < 0:
            raise GrantError("The tool result's view token has no valid lifetime.")
        return cls(session_id, page_url, api_base.rstrip("/"), token, expires)


def tool_text(result: dict[str, Any]) -> str:
    """The result's text content, joined (what a host without views shows)."""
    content = result.get("content")
    if not isinstance(content, list):
        return ""
    return " ".join(str(block.get("text")) for block in content
                    if isinstance(block, dict) and block.get("type") == "text" and block.get("text"))


def _absolute(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 2048
