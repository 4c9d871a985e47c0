"""The configured access token, as an ``Authorization: Bearer`` header must carry it."""

from __future__ import annotations

import hmac


def token_matches(authorization: str | None, expected: str) -> bool:
    if not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Bytes, because compare_digest refuses non-ASCII str and a client controls this value.
    return hmac.compare_digest(token.strip().encode("utf-8"), expected.encode("utf-8"))


def challenge(authorization: str | None) -> str:
    """The ``WWW-Authenticate`` value for a refusal (RFC 6750: name the error when one was sent)."""
    return 'Bearer error="invalid_token"' if authorization else "Bearer"
