"""A browser's role in a session: one master (may act), the others observers (watch)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    # A str enum: the wire format (JSON, MCP results, page messages) stays "master"/"observer".
    MASTER = "master"
    OBSERVER = "observer"

    @classmethod
    def of(cls, client_id: str, master_client_id: str | None) -> Role:
        return cls.MASTER if client_id == master_client_id else cls.OBSERVER
