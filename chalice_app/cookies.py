"""Browser identity: a signed, HttpOnly per-session cookie, and the client ids derived from it.

The cookie names a random browser id, signed with the server's secret. A tab's client id is derived
from (session, browser id, tab id) with the same secret, so it cannot be chosen by a client, stays
the same across reloads of the tab, and differs between tabs of one browser.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from http.cookies import CookieError, SimpleCookie

from web_py.messages import CLIENT_ID_LENGTH, is_valid_session_id

BROWSER_ID = re.compile(r"^[a-z0-9]{16}$")
TAB_ID = re.compile(r"^[A-Za-z0-9_-]{0,32}$")
TAB_HEADER = "x-pbfm-tab"
_ALPHABET = string.ascii_lowercase + string.digits


def cookie_name(session_id: str) -> str:
    return f"pbfm_{session_id}"


def new_browser_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def _mac(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def _signature(secret: str, session_id: str, browser_id: str) -> str:
    return _mac(secret, f"pbfm-webpage:cookie:{session_id}:{browser_id}").hex()


def client_id_for(secret: str, session_id: str, browser_id: str, tab_id: str) -> str:
    number = int.from_bytes(_mac(secret, f"pbfm-webpage:client:{session_id}:{browser_id}:{tab_id}")[:10], "big")
    chars = []
    for _ in range(CLIENT_ID_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def issue(secret: str, session_id: str, browser_id: str, *, max_age_s: int, secure: bool) -> str:
    """A Set-Cookie header value binding this browser profile to ``browser_id`` in ``session_id``."""
    value = f"{browser_id}.{_signature(secret, session_id, browser_id)}"
    attributes = [f"{cookie_name(session_id)}={value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age_s}"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def _morsel_value(session_id: str, cookie_header: str | None) -> str | None:
    if not cookie_header or not is_valid_session_id(session_id):
        return None
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(cookie_name(session_id))
    return None if morsel is None else morsel.value


def sent_for(session_id: str, cookie_header: str | None) -> bool:
    """Whether the request carries a cookie for this session at all (valid or not)."""
    return _morsel_value(session_id, cookie_header) is not None


def verified_browser_id(secret: str, session_id: str, cookie_header: str | None) -> str | None:
    """The browser id of a valid cookie for this session; None when absent, malformed or tampered."""
    value = _morsel_value(session_id, cookie_header)
    if value is None:
        return None
    browser_id, _, signature = value.partition(".")
    if not BROWSER_ID.match(browser_id):
        return None
    if not hmac.compare_digest(signature, _signature(secret, session_id, browser_id)):
        return None
    return browser_id
