"""REST binding: one Chalice route per registry operation that speaks "rest".

A browser operation (one that takes a ``Caller``) identifies its caller by the signed cookie and
tab id, or — the session view inside an AI chat, where our cookie would be a third-party one — by
a view token header (``view_tokens``); a refused token is a 401 and changes nothing. Those
operations also answer CORS (preflight included) for the configured view origins (``view_cors``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Chalice, Response

from chalice_app import bearer, cookies, view_cors, view_tokens
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

    app.route(operation.path, methods=[operation.method], name=operation.name)(_with_view_cors(app, operation,
                                                                                               settings_provider, view))
    if operation.caller_param is not None:
        # A browser operation: the view in a chat host's sandbox calls it cross-origin.
        def cors_preflight() -> Response:
            request = app.current_request
            assert request is not None
            return view_cors.preflight(view_cors.view_origin(request.headers, settings_provider()),
                                       f"{operation.method}, OPTIONS")

        app.route(operation.path, methods=["OPTIONS"], name=f"{operation.name}_preflight")(cors_preflight)


def _with_view_cors(app: Chalice, operation: Operation, settings_provider: Callable[[], Settings],
                    view: Callable[[], Response]) -> Callable[[], Response]:
    """Every answer of a browser operation (errors too: the page acts on 401/409/410) carries CORS
    for a view origin; other operations and origins get none."""
    if operation.caller_param is None:
        return view

    def with_cors() -> Response:
        response = view()
        request = app.current_request
        origin = None if request is None else view_cors.view_origin(request.headers, settings_provider())
        if origin is not None:
            response.headers.update(view_cors.cors_headers(origin))
        return response

    return with_cors


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
    now = services().now() if services is not None else time.time()
    token: view_tokens.ViewToken | None = None
    rebound: list[view_tokens.ViewToken] = []
    if operation.caller_param is not None and isinstance(session_id, str):
        if headers.get(view_tokens.HEADER) is not None:
            token = _identify_view(caller, settings, session_id, headers, now, rebound)
        else:
            minted = _identify(caller, settings.cookie_secret, session_id, headers)
    result = operation.invoke(parsed, caller, services, links)
    response_headers: dict[str, str | list[str]] = dict(JSON_HEADERS)
    if rebound:
        # The join bound the view to the session's incarnation: from now on it is this token.
        response_headers[view_tokens.HEADER] = rebound[-1].value
    elif token is not None and token.due_for_renewal(now, settings.view_token_lifetime_s):
        # Like a cookie kept fresh by use: the view's transport takes the new token from here.
        response_headers[view_tokens.HEADER] = view_tokens.issue(
            settings.cookie_secret, token.session_id, now=now, lifetime_s=settings.view_token_lifetime_s,
            view_id=token.view_id, incarnation=token.incarnation).value
    if minted and isinstance(session_id, str):  # a cookie identity was (re)issued; a view has none
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


def _identify_view(caller: Caller, settings: Settings, session_id: str, headers: Any, now: float,
                   rebound: list[view_tokens.ViewToken]) -> view_tokens.ViewToken:
    """The view in a chat: its identity is the token's (never a cookie, which is not even read).

    A join into an incarnation other than the token's binds the view to it: a new token (same view,
    fresh lifetime) goes into ``rebound`` and so back to the view, like a re-issued cookie.
    """
    secret = settings.cookie_secret
    tab_id = headers.get(cookies.TAB_HEADER) or ""
    if not cookies.TAB_ID.fullmatch(tab_id):
        raise InvalidInput(f"the {cookies.TAB_HEADER} header must be 0-32 of A-Z a-z 0-9 _ -")
    try:
        token = view_tokens.verify(secret, str(headers.get(view_tokens.HEADER)), session_id, now=now)
    except view_tokens.TokenRefused as exc:
        raise Unauthorized(str(exc), details={"view_token": exc.reason}) from None
    caller.client_id = view_tokens.client_id_for(secret, token, tab_id)
    caller.browser_id = view_tokens.browser_id_of(token)
    caller.incarnation = token.incarnation
    caller.in_chat = True

    def bind(incarnation: str) -> str:
        rebound.append(view_tokens.issue(secret, session_id, now=now, lifetime_s=settings.view_token_lifetime_s,
                                         view_id=token.view_id, incarnation=incarnation))
        return view_tokens.client_id_for(secret, rebound[-1], tab_id)

    caller.mint = bind
    return token


def _arguments(method: str, raw_body: bytes | str | None, query: Mapping[str, str] | None, limit: int) -> Any:
    if method == "GET":
        return dict(query or {})
    if raw_body is None or raw_body in (b"", ""):
        return {}
    return parse_json_body(raw_body, limit=limit)
