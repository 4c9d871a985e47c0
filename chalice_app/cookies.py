"""Browser identity: a signed, HttpOnly per-session cookie, and the client ids derived from it.

The cookie names a random browser id and the session's incarnation, signed with the server's
secret. A tab's client id is derived from (session, incarnation, browser id, tab id) with the same
secret, so it cannot be chosen by a client, stays the same across reloads of the tab, differs
between tabs of one browser, and differs between incarnations of a session id (so a re-created
session never reuses an earlier incarnation's queues). Cookies from before incarnations
(``{browser}.{signature}``) still verify, as incarnation "".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

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


INCARNATION = re.compile(r"^[a-z0-9]{1,16}$")


def _signature(secret: str, session_id: str, browser_id: str, incarnation: str = "") -> str:
    scope = f"{session_id}:{browser_id}" if not incarnation else f"{session_id}:{incarnation}:{browser_id}"
    return _mac(secret, f"pbfm-webpage:cookie:{scope}").hex()


def client_id_for(secret: str, session_id: str, browser_id: str, tab_id: str, incarnation: str = "") -> str:
    scope = f"{session_id}:{browser_id}:{tab_id}" if not incarnation else \
        f"{session_id}:{incarnation}:{browser_id}:{tab_id}"
    number = int.from_bytes(_mac(secret, f"pbfm-webpage:client:{scope}")[:10], "big")
    chars = []
    for _ in range(CLIENT_ID_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def issue(secret: str, session_id: str, browser_id: str, *, max_age_s: int, secure: bool,
          incarnation: str = "") -> str:
    """A Set-Cookie header value binding this browser profile to ``browser_id`` in ``session_id``."""
    signature = _signature(secret, session_id, browser_id, incarnation)
    value = f"{browser_id}.{incarnation}.{signature}" if incarnation else f"{browser_id}.{signature}"
    attributes = [f"{cookie_name(session_id)}={value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age_s}"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def cookie_values(cookie_header: str | None, name: str) -> list[str]:
    """Every value sent under ``name`` in a ``Cookie`` header, in the order sent.

    Parsed pair by pair (``;`` between pairs, the first ``=`` between name and value), so a foreign
    cookie we cannot make sense of — JSON, unbalanced quotes, spaces, commas, no ``=`` at all —
    never hides the cookies after it (``SimpleCookie.load`` stops at the first one). A name can
    come more than once (the same name set for another path or domain); the caller decides which
    value counts. One pair of surrounding double quotes is dropped, as RFC 6265 allows them.
    """
    if not cookie_header:
        return []
    values = []
    for pair in cookie_header.split(";"):
        key, has_value, value = pair.partition("=")
        if not has_value or key.strip() != name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values.append(value)
    return values


def _values_for(session_id: str, cookie_header: str | None) -> list[str]:
    if not is_valid_session_id(session_id):
        return []
    return cookie_values(cookie_header, cookie_name(session_id))


def sent_for(session_id: str, cookie_header: str | None) -> bool:
    """Whether the request carries a cookie for this session at all (valid or not)."""
    return bool(_values_for(session_id, cookie_header))


def verified_identity(secret: str, session_id: str, cookie_header: str | None) -> tuple[str, str] | None:
    """(browser id, incarnation) of a valid cookie for this session; None when absent, malformed or tampered.

    When the name comes more than once, the first value that verifies counts: a stale duplicate
    (e.g. left under another path) must not cost the browser its identity.
    """
    for value in _values_for(session_id, cookie_header):
        browser_id, _, rest = value.partition(".")
        incarnation, _, signature = rest.rpartition(".")
        if not BROWSER_ID.fullmatch(browser_id) or (incarnation and not INCARNATION.fullmatch(incarnation)):
            continue
        if hmac.compare_digest(signature.encode("utf-8", "surrogatepass"),
                               _signature(secret, session_id, browser_id, incarnation).encode()):
            return browser_id, incarnation
    return None


def verified_browser_id(secret: str, session_id: str, cookie_header: str | None) -> str | None:
    """The browser id of a valid cookie for this session (see ``verified_identity``)."""
    identity = verified_identity(secret, session_id, cookie_header)
    return None if identity is None else identity[0]
