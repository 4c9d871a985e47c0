"""Errors that know their own HTTP status and JSON-RPC code.

Operations raise these; the REST adapter and the MCP adapter each turn them into a response in one
place, so an operation never thinks about transports.
"""

from __future__ import annotations

import math
from typing import Any


class ApiError(Exception):
    status = 500
    code = "internal_error"
    # JSON-RPC: invalid params for bad input; tool failures otherwise surface as isError results.
    jsonrpc_code = -32603

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        # Response headers the error needs (e.g. a 401's WWW-Authenticate challenge).
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidInput(ApiError):
    status = 400
    code = "invalid_input"
    jsonrpc_code = -32602


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"
    jsonrpc_code = -32602


class Gone(ApiError):
    """The caller's queue or session no longer exists; the client should join again."""

    status = 410
    code = "gone"


class TooManyRequests(ApiError):
    """Asked again too soon; ``retry_after_s`` says when it will be accepted."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        wait = max(1, math.ceil(retry_after_s))
        super().__init__(message, details={"retry_after_s": wait}, headers={"Retry-After": str(wait)})
        self.retry_after_s = wait


class UpstreamError(ApiError):
    status = 502
    code = "upstream_error"
