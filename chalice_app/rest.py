"""REST binding: one Chalice route per registry operation that speaks "rest"."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response

from chalice_app import cookies
from chalice_app.caller import Caller
from chalice_app.errors import ApiError, InvalidInput, PayloadTooLarge
from chalice_app.registry import Operation, Registry
from chalice_app.settings import Settings

log = logging.getLogger(__name__)
JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def error_response(error: ApiError) -> Response:
    return Response(body=json.dumps(error.to_dict()), status_code=error.status, headers=dict(JSON_HEADERS))


def mount_rest(app: Chalice, registry: Registry, settings_provider: Callable[[], Settings]) -> None:
    for operation in registry.operations("rest"):
        _mount(app, operation, settings_provider)


def _mount(app: Chalice, operation: Operation, settings_provider: Callable[[], Settings]) -> None:
    def view() -> Response:
        request = app.current_request
        try:
            return _handle(operation, settings_provider(), request.method, request.raw_body,
                           request.query_params, request.headers)
        except ApiError as exc:
            return error_response(exc)
        except Exception:
            log.exception("%s failed", operation.name)
            return error_response(ApiError("Internal error; the server log has the details."))

    app.route(operation.path, methods=[operation.method], name=operation.name)(view)


def _handle(operation: Operation, settings: Settings, method: str, raw_body: bytes | str | None,
            query: dict[str, str] | None, headers: Any) -> Response:
    arguments = _arguments(method, raw_body, query, settings.max_message_bytes)
    parsed = operation.parse_arguments(arguments)
    caller = Caller(protocol="rest")
    session_id = getattr(parsed, "session_id", None)
    if operation.caller_param is not None and isinstance(session_id, str):
        cookie_header = headers.get("cookie")
        caller.client_id = cookies.verified_client_id(settings.cookie_secret, session_id, cookie_header)
        caller.rejected_cookie = caller.client_id is None and cookies.sent_for(session_id, cookie_header)
    result = operation.invoke(parsed, caller)
    response_headers = dict(JSON_HEADERS)
    if caller.issued_client_id is not None and isinstance(session_id, str):
        response_headers["Set-Cookie"] = cookies.issue(
            settings.cookie_secret, session_id, caller.issued_client_id,
            max_age_s=settings.session_ttl_s, secure=settings.cookie_secure,
        )
    return Response(body=result.model_dump_json(), status_code=200, headers=response_headers)


def _arguments(method: str, raw_body: bytes | str | None, query: dict[str, str] | None, limit: int) -> Any:
    if method == "GET":
        return dict(query or {})
    if raw_body is None or raw_body in (b"", ""):
        return {}
    if len(raw_body) > limit:
        raise PayloadTooLarge(f"request body is {len(raw_body)} bytes; the limit is {limit} bytes")
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
