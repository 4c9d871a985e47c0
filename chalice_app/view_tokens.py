"""The identity of a session view inside a chat: a signed, short-lived token scoped to one session.

A chat host shows our view (``mcp_app_view``) in an iframe on its own sandbox origin, where our
cookie would be a third-party cookie (blocked, or partitioned away). So the view is identified by a
token instead, handed to it in a tool result's ``_meta`` (never in model-visible text) and sent back
as the ``X-PBFM-View-Token`` header. The token names one session and one view; it is signed with the
server's secret and expires after ``view_token_lifetime_s``. Answers to a view renew it (a response
header) while the view is alive, so a view open for hours keeps working and a token copied out of a
closed view dies within one lifetime.

What a token grants: the identity of one participant "in chat" of that session, on the browser
operations only (join, poll, acknowledge, heartbeat, repair, status) — what anyone holding the
page's public URL may do with a cookie. Never another session (the token's session must equal the
request's), never another participant's queues (the client id is derived from the token, not
chosen), never an AI operation (those need the bearer token, which a view never sees).

Format: ``v1.<session_id>.<incarnation>.<view_id>.<expires_at>.<signature>`` — session ids hold
no dots (``[A-Za-z0-9_-]``), the incarnation is the session incarnation the view joined (hex, or empty
in a grant not yet used to join: the join binds it and answers the bound token, as a cookie is
re-issued for a new incarnation), view ids are 16 of ``[a-z0-9]``, ``expires_at`` is epoch seconds,
the signature an HMAC-SHA256 (hex) over all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

from chalice_app import cookies
from web_py.messages import is_valid_session_id
from web_py.view_grant import TOKEN_HEADER

HEADER = TOKEN_HEADER.lower()
VERSION = "v1"
VIEW_ID = re.compile(r"^[a-z0-9]{16}$")
INCARNATION = re.compile(r"^[0-9a-f]{0,16}$")
_ALPHABET = string.ascii_lowercase + string.digits
# The longest token a request may carry (a 24-character session id makes a 125-character token).
MAX_LENGTH = 200


@dataclass(frozen=True)
class ViewToken:
    session_id: str
    view_id: str
    expires_at: int
    value: str
    incarnation: str = ""

    def expires_in_s(self, now: float) -> int:
        return max(0, int(self.expires_at - now))

    def due_for_renewal(self, now: float, lifetime_s: int) -> bool:
        """Past half its life: the next answer to this view carries a fresh one."""
        return self.expires_at - now < lifetime_s / 2


class TokenRefused(ValueError):
    """A token that does not identify a view of this session now; the message says why, ``reason``
    in one word ("malformed", "invalid", "other_session", "expired": only that one is worth renewing)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def new_view_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def _signature(secret: str, session_id: str, incarnation: str, view_id: str, expires_at: int) -> str:
    message = f"pbfm-webpage:view:{VERSION}:{session_id}:{incarnation}:{view_id}:{expires_at}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def issue(secret: str, session_id: str, *, now: float, lifetime_s: int, view_id: str | None = None,
          incarnation: str = "") -> ViewToken:
    """A token for a new view of ``session_id`` (or a renewal of ``view_id``'s, in ``incarnation``)."""
    if not is_valid_session_id(session_id):
        raise ValueError(f"not a session id: {session_id!r}")
    view = view_id or new_view_id()
    if not VIEW_ID.fullmatch(view):
        raise ValueError(f"not a view id: {view!r}")
    if not INCARNATION.fullmatch(incarnation):
        raise ValueError(f"not an incarnation: {incarnation!r}")
    expires_at = int(now) + int(lifetime_s)
    signature = _signature(secret, session_id, incarnation, view, expires_at)
    value = f"{VERSION}.{session_id}.{incarnation}.{view}.{expires_at}.{signature}"
    return ViewToken(session_id, view, expires_at, value, incarnation)


def verify(secret: str, value: str, session_id: str, *, now: float) -> ViewToken:
    """The token ``value`` if it is ours, unexpired and for ``session_id``; else ``TokenRefused``."""
    if len(value) > MAX_LENGTH:
        raise TokenRefused("The view token is malformed.", "malformed")
    parts = value.split(".")
    if len(parts) != 6 or parts[0] != VERSION:
        raise TokenRefused("The view token is malformed.", "malformed")
    _version, token_session, incarnation, view_id, expires, signature = parts
    if not (is_valid_session_id(token_session) and INCARNATION.fullmatch(incarnation) and VIEW_ID.fullmatch(view_id)
            and expires.isdigit() and len(expires) <= 12):
        raise TokenRefused("The view token is malformed.", "malformed")
    expected = _signature(secret, token_session, incarnation, view_id, int(expires))
    if not hmac.compare_digest(signature.encode("utf-8", "surrogatepass"), expected.encode()):
        raise TokenRefused("The view token is not valid on this server.", "invalid")
    if token_session != session_id:
        raise TokenRefused("The view token belongs to another session.", "other_session")
    if int(expires) <= now:
        raise TokenRefused("The view token has expired; open the view again from the chat.", "expired")
    return ViewToken(token_session, view_id, int(expires), value, incarnation)


def browser_id_of(token: ViewToken) -> str:
    """The browser identity a view stands for: never a cookie's (those have no dash)."""
    return f"view-{token.view_id}"


def client_id_for(secret: str, token: ViewToken, tab_id: str) -> str:
    """The view's participant id: derived like a browser tab's, from the token's view id and incarnation."""
    return cookies.client_id_for(secret, token.session_id, browser_id_of(token), tab_id, token.incarnation)
