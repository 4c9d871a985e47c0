"""The MCP App view over the real app in process: the resource, the tools' links, the grant, the token, CORS.

Our wire format is checked against the extension's own definitions: the JSON Schema the npm package
``@modelcontextprotocol/ext-apps`` ships (``schema.json``), and the ``mcp`` SDK's ``mcp.server.apps``
(identifier, MIME type, CSP model) — the runtime itself never imports ``mcp``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from jsonschema import Draft202012Validator
from mcp.server import apps

from chalice_app import mcp_app_view
from chalice_app.application import create_app
from chalice_app.settings import Settings
from chalice_app.static_site import PYSCRIPT_TOML
from chalice_app.view_tokens import issue, verify
from pbfm_tooling.memory_backends import ManualClock, memory_service
from tests.functional.app_calls import post
from web_py.view_grant import GRANT_META, TOKEN_HEADER, ViewGrant

ROOT = Path(__file__).resolve().parents[2]
EXT_SCHEMA = json.loads((ROOT / "node_modules/@modelcontextprotocol/ext-apps/dist/src/generated/schema.json")
                        .read_text())["$defs"]
VIEW_ORIGIN = "https://abc123.sandbox.example"
HOST = "pages.example.test"
BASE = f"http://{HOST}"
LIFETIME = 600


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def service(clock: ManualClock) -> Any:
    return memory_service(Settings(view_origins=(VIEW_ORIGIN,), view_token_lifetime_s=LIFETIME,
                                   price_source="simulated"), clock)


@pytest.fixture
def client(service: Any) -> Iterator[Client]:
    with Client(create_app(lambda: service)) as test_client:
        yield test_client


def rpc(client: Client, method: str, params: dict[str, Any] | None = None) -> Any:
    answer = post(client, "/mcp", {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}},
                  {"Host": HOST})
    return json.loads(answer.body)["result"]


def grant_of(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = rpc(client, "tools/call", {"name": tool, "arguments": arguments})
    assert not result["isError"], result
    return dict(result["_meta"][GRANT_META])


def view_call(client: Client, operation: str, body: dict[str, Any], token: str, origin: str = VIEW_ORIGIN,
              tab: str = "tab1") -> Any:
    return post(client, f"/api/{operation}", body, {"Origin": origin, TOKEN_HEADER: token, "X-PBFM-Tab": tab})


def validate(definition: str, instance: Any) -> None:
    Draft202012Validator(EXT_SCHEMA[definition]).validate(instance)


# -- the resource and the tools ------------------------------------------------------------------

def test_the_extension_constants_are_the_sdks() -> None:
    assert mcp_app_view.EXTENSION_ID == apps.EXTENSION_ID
    assert mcp_app_view.MIME_TYPE == apps.APP_MIME_TYPE


def test_the_view_is_listed_and_read_with_exact_origins(client: Client, service: Any) -> None:
    listed = {r["uri"]: r for r in rpc(client, "resources/list")["resources"]}
    entry = listed[mcp_app_view.VIEW_URI]
    assert entry["mimeType"] == apps.APP_MIME_TYPE
    content = rpc(client, "resources/read", {"uri": mcp_app_view.VIEW_URI})["contents"][0]
    assert content["mimeType"] == apps.APP_MIME_TYPE and content["uri"] == mcp_app_view.VIEW_URI
    for meta in (entry["_meta"]["ui"], content["_meta"]["ui"]):
        validate("McpUiResourceMeta", meta)
        csp = apps.ResourceCsp.model_validate(meta["csp"])
        region, bucket = service.settings.region, service.settings.bucket_name
        assert csp.resource_domains == [BASE]
        assert csp.connect_domains == [BASE, f"https://{bucket}.s3.{region}.amazonaws.com",
                                       f"https://{bucket}.s3.amazonaws.com", f"https://s3.{region}.amazonaws.com",
                                       f"https://sqs.{region}.amazonaws.com"]
        assert not any("*" in origin for origin in [*csp.resource_domains, *csp.connect_domains])
    html = content["text"]
    assert html.startswith("<!doctype html>")
    # Our own Pyodide, at our absolute address; the page's one module list, made absolute.
    assert f'src="{BASE}/static/view_bridge.js"' in html
    config = json.loads(html.split('config="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert config["interpreter"] == f"{BASE}/vendor/pyodide/314.0.7/pyodide.mjs"
    files = tomllib.loads(PYSCRIPT_TOML.read_text())["files"]
    assert config["files"] == {f"{BASE}{source}": target for source, target in files.items()}
    assert f'src="{BASE}/web_py/view_main.py"' in html


def test_the_runtime_in_s3_is_declared_too(clock: ManualClock) -> None:
    settings = Settings(asset_base_url="https://assets.example.test/static", aws_public_endpoint_url=None)
    from chalice_app.page_links import PageLinks

    csp = mcp_app_view.csp(settings, PageLinks(BASE))
    assert csp["resourceDomains"] == [BASE, "https://assets.example.test"]
    assert csp["connectDomains"][:2] == [BASE, "https://assets.example.test"]


def test_tools_that_show_a_session_link_the_view_and_only_read_only_ones_are_callable_by_it(client: Client) -> None:
    tools = {t["name"]: t for t in rpc(client, "tools/list")["tools"]}
    linked = {name for name, t in tools.items() if t.get("_meta", {}).get("ui", {}).get("resourceUri")}
    assert linked == {"webpage_create_session", "webpage_update_hash_price_display", "webpage_send_to_browsers",
                      "webpage_show_stored_layout", "webpage_get_page_state"}
    for name, tool in tools.items():
        ui = tool.get("_meta", {}).get("ui")
        if ui is not None:
            validate("McpUiToolMeta", ui)
        app_callable = ui is None or "app" in ui.get("visibility", ["model", "app"])
        # A view is an untrusted iframe: through the host it may reach nothing that changes state.
        assert app_callable == tool["annotations"]["readOnlyHint"], name
    assert tools["webpage_get_page_state"]["_meta"]["ui"]["visibility"] == ["model", "app"]
    assert rpc(client, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}})["capabilities"][
        "extensions"] == {apps.EXTENSION_ID: {}}


def test_the_grant_rides_in_meta_and_never_in_the_text(client: Client) -> None:
    result = rpc(client, "tools/call", {"name": "webpage_create_session", "arguments": {"session_id": "g1"}})
    grant = ViewGrant.from_tool_result(result)
    assert (grant.session_id, grant.page_url, grant.api_base) == ("g1", f"{BASE}/session/g1", BASE)
    assert grant.expires_in_s == LIFETIME
    assert grant.token not in json.dumps(result["content"]) and grant.token not in json.dumps(
        result["structuredContent"])
    assert f"{BASE}/session/g1" in result["content"][0]["text"]
    # Tools that show nothing of a session carry none; a failed call carries none.
    assert "_meta" not in rpc(client, "tools/call", {"name": "webpage_list_sessions", "arguments": {}})
    failed = rpc(client, "tools/call", {"name": "webpage_update_hash_price_display", "arguments": {"session_id": "x"}})
    assert failed["isError"] and "_meta" not in failed


# -- the token on the browser operations -----------------------------------------------------------

def test_the_view_joins_as_an_observer_in_chat_without_any_cookie(client: Client, service: Any) -> None:
    token = grant_of(client, "webpage_create_session", session_id="v1")["token"]
    joined = view_call(client, "webpage_join_session", {"session_id": "v1"}, token)
    assert joined.status_code == 200, joined.body
    assert "set-cookie" not in {k.lower() for k in joined.headers}
    body = json.loads(joined.body)
    assert body["role"] == "observer" and body["master_client_id"] is None
    record = service.store.get_client("v1", body["client_id"])
    assert record is not None and record.in_chat
    # The join bound the view to the session's incarnation: its answer carries the bound token.
    bound = {k.lower(): v for k, v in joined.headers.items()}[TOKEN_HEADER.lower()]
    bound_to = verify(service.settings.cookie_secret, bound, "v1", now=1_800_000_000.0).incarnation
    assert bound != token and bound_to == body["incarnation"] != ""
    # The same token and tab is the same participant (a reload of the frame with its tab id).
    again = json.loads(view_call(client, "webpage_join_session", {"session_id": "v1"}, token).body)
    assert again["client_id"] == body["client_id"] and again["resumed"]
    beat = view_call(client, "webpage_send_heartbeat", {"session_id": "v1"}, bound)
    assert beat.status_code == 200 and json.loads(beat.body)["role"] == "observer"
    # The unbound grant names no participant of the incarnation: only a join may use it.
    assert view_call(client, "webpage_send_heartbeat", {"session_id": "v1"}, token).status_code == 404


@pytest.mark.parametrize("operation", ["webpage_join_session", "webpage_send_heartbeat", "webpage_get_events",
                                       "webpage_poll_queue", "webpage_request_price_refresh"])
def test_a_token_for_one_session_is_refused_for_another_and_changes_nothing(client: Client, service: Any,
                                                                           operation: str) -> None:
    token = grant_of(client, "webpage_create_session", session_id="a")["token"]
    rpc(client, "tools/call", {"name": "webpage_create_session", "arguments": {"session_id": "b"}})
    body: dict[str, Any] = {"session_id": "b"}
    if operation == "webpage_poll_queue":
        body |= {"queue": "live", "wait_seconds": 0}
    before = service.store.require_session("b")
    refused = view_call(client, operation, body, token)
    assert refused.status_code == 401, refused.body
    assert json.loads(refused.body)["message"] == "The view token belongs to another session."
    assert service.store.list_clients("b") == [] and service.store.require_session("b") == before


def test_an_expired_or_forged_token_is_refused(client: Client, clock: ManualClock) -> None:
    token = grant_of(client, "webpage_create_session", session_id="e")["token"]
    forged = issue("another-secret", "e", now=clock(), lifetime_s=LIFETIME).value
    assert view_call(client, "webpage_join_session", {"session_id": "e"}, forged).status_code == 401
    assert json.loads(view_call(client, "webpage_join_session", {"session_id": "e"}, forged).body)["details"] == {
        "view_token": "invalid"}
    clock.advance(LIFETIME + 1)
    expired = view_call(client, "webpage_join_session", {"session_id": "e"}, token)
    assert expired.status_code == 401 and "expired" in json.loads(expired.body)["message"]
    # The one refusal a fresh grant cures says so, for the view to renew through the host.
    assert json.loads(expired.body)["details"] == {"view_token": "expired"}


def test_answers_past_half_the_tokens_life_renew_it(client: Client, clock: ManualClock) -> None:
    token = grant_of(client, "webpage_create_session", session_id="r")["token"]
    joined = view_call(client, "webpage_join_session", {"session_id": "r"}, token)
    token = {k.lower(): v for k, v in joined.headers.items()}[TOKEN_HEADER.lower()]  # bound by the join
    beat = view_call(client, "webpage_send_heartbeat", {"session_id": "r"}, token)
    assert TOKEN_HEADER.lower() not in {k.lower() for k in beat.headers}  # young: not renewed
    clock.advance(LIFETIME / 2 + 1)
    beat = view_call(client, "webpage_send_heartbeat", {"session_id": "r"}, token)
    renewed = {k.lower(): v for k, v in beat.headers.items()}[TOKEN_HEADER.lower()]
    assert renewed != token
    clock.advance(LIFETIME / 2)  # the first token has expired now, the renewed one has not
    assert view_call(client, "webpage_send_heartbeat", {"session_id": "r"}, token).status_code == 401
    again = view_call(client, "webpage_send_heartbeat", {"session_id": "r"}, renewed)
    assert again.status_code == 200
    assert json.loads(again.body)["role"] == "observer"


def test_a_view_token_opens_no_ai_operation(client: Client) -> None:
    # With a configured bearer token, REST creation stays closed to a view token.
    service = memory_service(Settings(mcp_token="t" * 40, view_origins=(VIEW_ORIGIN,)))
    with Client(create_app(lambda: service)) as closed:
        token = issue(service.settings.cookie_secret, "n", now=service.now(), lifetime_s=60).value
        refused = view_call(closed, "webpage_create_session", {"session_id": "n"}, token)
        assert refused.status_code == 401 and service.store.get_session("n") is None


# -- CORS for the view's sandbox origin ----------------------------------------------------------

def test_browser_operations_answer_cors_for_the_view_origin_only(client: Client) -> None:
    token = grant_of(client, "webpage_create_session", session_id="c")["token"]
    preflight = client.http.request("OPTIONS", "/api/webpage_join_session", headers={
        "Origin": VIEW_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-pbfm-tab, x-pbfm-view-token"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == VIEW_ORIGIN
    assert {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")} >= {
        "content-type", "x-pbfm-tab", "x-pbfm-view-token"}
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    answered = view_call(client, "webpage_join_session", {"session_id": "c"}, token)
    assert answered.headers["Access-Control-Allow-Origin"] == VIEW_ORIGIN
    assert answered.headers["Access-Control-Expose-Headers"].lower() == TOKEN_HEADER.lower()
    # A refusal carries CORS too: the view must read a 401 or 410, not a network error.
    refused = view_call(client, "webpage_join_session", {"session_id": "c"}, "v1.c.x.1.y")
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == VIEW_ORIGIN
    for origin in ("https://evil.example", "https://abc123.sandbox.example.evil", "null"):
        other = client.http.request("OPTIONS", "/api/webpage_join_session", headers={"Origin": origin})
        assert other.status_code == 403 and "Access-Control-Allow-Origin" not in other.headers
        assert "Access-Control-Allow-Origin" not in view_call(client, "webpage_join_session", {"session_id": "c"},
                                                              token, origin=origin).headers
    # AI operations answer no CORS at all.
    created = post(client, "/api/webpage_create_session", {"session_id": "d"}, {"Origin": VIEW_ORIGIN})
    assert "Access-Control-Allow-Origin" not in created.headers


def test_the_runtime_and_page_modules_answer_cors_for_the_view_origin(client: Client) -> None:
    for path in ("/static/view_bridge.js", "/static/page.css", "/web_py/view_main.py", "/web_py/view_io.py",
                 "/vendor/pyscript/0.7.31/core.css"):
        answer = client.http.get(path, headers={"Origin": VIEW_ORIGIN})
        assert answer.status_code == 200, path
        assert answer.headers["Access-Control-Allow-Origin"] == VIEW_ORIGIN, path
        assert "Access-Control-Allow-Origin" not in client.http.get(path, headers={"Origin": "https://x.example"}
                                                                    ).headers
    page = client.http.get("/session/c", headers={"Origin": VIEW_ORIGIN})
    assert "Access-Control-Allow-Origin" not in page.headers
