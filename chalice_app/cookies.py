"""The signed, HttpOnly per-session cookie that identifies a browser."""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import CookieError, SimpleCookie

from web_py.messages import is_valid_client_id, is_valid_session_id


def cookie_name(session_id: str) -> str:
    return f"pbfm_{session_id}"


def _signature(secret: str, session_id: str, client_id: str) -> str:
    message = f"pbfm-webpage:{session_id}:{client_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def issue(secret: str, session_id: str, client_id: str, *, max_age_s: int, secure: bool) -> str:
    """A Set-Cookie header value binding this browser to ``client_id`` in ``session_id``."""
    value = f"{client_id}.{_signature(secret, session_id, client_id)}"
    attributes = [f"{cookie_name(session_id)}={value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age_s}"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def sent_for(session_id: str, cookie_header: str | None) -> bool:
    """Whether the request carries a cookie for this session at all (valid or not)."""
    if not cookie_header:
        return False
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return False
    return cookie_name(session_id) in jar


def verified_client_id(secret: str, session_id: str, cookie_header: str | None) -> str | None:
    """The client id of a valid cookie for this session; None when absent, malformed or tampered."""
    if not cookie_header or not is_valid_session_id(session_id):
        return None
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(cookie_name(session_id))
    if morsel is None:
        return None
    client_id, _, signature = morsel.value.partition(".")
    if not is_valid_client_id(client_id):
        return None
    if not hmac.compare_digest(signature, _signature(secret, session_id, client_id)):
        return None
    return client_id
