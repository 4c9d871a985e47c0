"""Who is calling an operation, as the transport established it.

REST requests carry a signed per-session cookie; the adapter verifies it and hands operations a
``Caller``. Operations that need a browser identity declare a ``Caller`` parameter; the registry
keeps it out of the public schema so no client can claim an identity through arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalice_app.errors import Unauthorized


@dataclass
class Caller:
    protocol: str = "rest"
    client_id: str | None = None
    # Set by an operation (join) that establishes a new identity; the REST adapter turns it into a cookie.
    issued_client_id: str | None = None
    # A cookie for this session was sent but failed verification (tampered, or signed by another
    # server secret). It is no identity; joining replaces it.
    rejected_cookie: bool = False

    def require_client(self) -> str:
        if self.client_id is None:
            if self.rejected_cookie:
                raise Unauthorized("The session cookie is invalid; join the session again.")
            raise Unauthorized("This call needs the session cookie set by webpage_join_session.")
        return self.client_id

    def issue(self, client_id: str) -> None:
        self.issued_client_id = client_id
        self.client_id = client_id
