"""Who is calling an operation, as the transport established it.

A browser is identified by a signed per-session cookie (one per browser profile) together with a
tab id the page keeps in ``sessionStorage`` and sends as the ``X-PBFM-Tab`` header: each tab is its
own participant with its own queues, and keeps its identity across reloads. The REST adapter
verifies both and hands operations a ``Caller``. Operations that need a browser identity declare a
``Caller`` parameter; the registry keeps it out of the public schema, so no client can claim an
identity through arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalice_app.errors import Unauthorized


@dataclass
class Caller:
    protocol: str = "rest"
    client_id: str | None = None
    # The signed browser profile behind the client id (its tabs are counted against a cap).
    browser_id: str | None = None
    # A cookie for this session was sent but failed verification (tampered, or signed by another
    # server secret). It is no identity; joining replaces it.
    rejected_cookie: bool = False
    # Supplied by the REST adapter: makes a new signed browser identity (the cookie to set) and
    # returns the client id it gives this tab.
    mint: Callable[[], str] | None = None
    minted: bool = False
    # Identified by a view token (the session view inside an AI chat), not by a cookie.
    in_chat: bool = False

    def require_client(self) -> str:
        if self.client_id is None:
            if self.rejected_cookie:
                raise Unauthorized("The session cookie is invalid; join the session again.")
            raise Unauthorized("This call needs the session cookie set by webpage_join_session.")
        return self.client_id

    def client_or_new_identity(self) -> str:
        """This caller's client id, minting a new browser identity when it has none (joining)."""
        if self.client_id is None:
            if self.mint is None:
                raise Unauthorized("This transport cannot establish a browser identity.")
            self.client_id = self.mint()
            self.minted = True
        return self.client_id
