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
    # The session incarnation the cookie was issued for ("" before incarnations existed).
    incarnation: str = ""
    # Supplied by the REST adapter: (re)issues the signed browser identity for an incarnation (the
    # cookie to set; the browser id of a valid cookie is kept) and returns this tab's client id in it.
    mint: Callable[[str], str] | None = None
    minted: bool = False

    def require_client(self) -> str:
        if self.client_id is None:
            if self.rejected_cookie:
                raise Unauthorized("The session cookie is invalid; join the session again.")
            raise Unauthorized("This call needs the session cookie set by webpage_join_session.")
        return self.client_id

    def identity_in(self, incarnation: str) -> tuple[str, str | None]:
        """(client id, browser id) of this caller in the session's current incarnation (joining).

        Mints a browser identity when there is none, and re-issues the cookie when it was made for
        an earlier incarnation of the session id (same browser, new client id and queues).
        """
        if self.client_id is None or self.incarnation != incarnation:
            if self.mint is None:
                raise Unauthorized("This transport cannot establish a browser identity.")
            self.client_id = self.mint(incarnation)
            self.incarnation = incarnation
            self.minted = True
        return self.client_id, self.browser_id
