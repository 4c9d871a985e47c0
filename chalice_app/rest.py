"""REST binding: one Chalice route per registry operation that speaks "rest"."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Chalice, Response

from chalice_app import bearer, cookies
from chalice_app.caller import Caller
from chalice_app.errors import ApiError, InvalidInput, Unauthorized
from chalice_app.json_body import parse_json_body
from chalice_app.page_links import PageLinks, links_for_request
from chalice_app.registry import Operation, Registry, ServiceProvider
from chalice_app.settings import Settings

log = logging.getLogger(__name__)
JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def error_response(error: ApiError) -> Response:
    headers: dict[str, str | list[str]] = {**JSON_HEADERS, **error.headers}
    return Response(body=json.dumps(error.to_dict()), status_code=error.status, headers=headers)


def mount_rest(app: Chalice, registry: Registry, settings_provider: Callable[[], Settings],
               services: ServiceProvider | None = None) -> None:
    """One route per "rest" operation; ``services`` gives operations that declare one their service."""
    for operation in registry.operations("rest"):
        _mount(app, operation, settings_provider, services)


def _mount(app: Chalice, operation: Operation, settings_provider: Callable[[], Settings],
           services: ServiceProvider | None) -> None:
    def view() -> Response:
        request = app.current_request
        assert request is not None  # Chalice sets it before calling a view
        try:
            settings = settings_provider()
            links = links_for_request(settings.public_base_url, request.headers,
                                      str((request.context or {}).get("path") or operation.path), operation.path)
            return _handle(operation, settings, request.method, request.raw_body,
                           request.query_params, request.headers, services, links)
        except ApiError as exc:
            return error_response(exc)
        except Exception:
            log.exception("%s failed", operation.name)
            return error_response(ApiError("Internal error; the server log has the details."))

    app.route(operation.path, methods=[operation.method], name=operation.name)(view)


def _handle(operation: Operation, settings: Settings, method: str, raw_body: bytes | str | None,
            query: Mapping[str, str] | None, headers: Any, services: ServiceProvider | None = None,
            links: PageLinks | None = None) -> Response:
    if operation.rest_needs_token and settings.mcp_token is not None:
        authorization = headers.get("authorization")
        if not bearer.token_matches(authorization, settings.mcp_token):
            raise Unauthorized(f"{operation.name} needs this server's access token: "
                               "send Authorization: Bearer <PBFM_MCP_TOKEN>.",
                               headers={"WWW-Authenticate": bearer.challenge(authorization)})
    arguments = _arguments(method, raw_body, query, settings.max_message_bytes)
    parsed = operation.parse_arguments(arguments)
    session_id = getattr(parsed, "session_id", None)
    caller = Caller(protocol="rest")
    minted: list[str] = []
    if operation.caller_param is not None and isinstance(session_id, str):
        minted = _identify(caller, settings.cookie_secret, session_id, headers)
    result = operation.invoke(parsed, caller, services, links)
    response_headers: dict[str, str | list[str]] = dict(JSON_HEADERS)
    if caller.minted and isinstance(session_id, str):
        response_headers["Set-Cookie"] = cookies.issue(
            settings.cookie_secret, session_id, minted[-1], max_age_s=settings.session_ttl_s,
            secure=settings.cookie_secure, incarnation=caller.incarnation,
        )
    return Response(body=result.model_dump_json(), status_code=200, headers=response_headers)


def _identify(caller: Caller, secret: str, session_id: str, headers: Any) -> list[str]:
    """Fill in the caller's identity from cookie + tab header; returns where a minted browser id goes."""
    tab_id = headers.get(cookies.TAB_HEADER) or ""
    if not cookies.TAB_ID.fullmatch(tab_id):
        raise InvalidInput(f"the {cookies.TAB_HEADER} header must be 0-32 of A-Z a-z 0-9 _ -")
    cookie_header = headers.get("cookie")
    identity = cookies.verified_identity(secret, session_id, cookie_header)
    if identity is not None:
        caller.browser_id, caller.incarnation = identity
        caller.client_id = cookies.client_id_for(secret, session_id, caller.browser_id, tab_id, caller.incarnation)
    caller.rejected_cookie = identity is None and cookies.sent_for(session_id, cookie_header)
    minted: list[str] = []

    def mint(incarnation: str) -> str:
        # A valid cookie of an earlier incarnation keeps its browser id; only its scope changes.
        minted.append(identity[0] if identity is not None else cookies.new_browser_id())
        caller.browser_id = minted[-1]
        return cookies.client_id_for(secret, session_id, minted[-1], tab_id, incarnation)

    caller.mint = mint
    return minted


def _arguments(method: str, raw_body: bytes | str | None, query: Mapping[str, str] | None, limit: int) -> Any:
    if method == "GET":
        return dict(query or {})
    if raw_body is None or raw_body in (b"", ""):
        return {}
    return parse_json_body(raw_body, limit=limit)
