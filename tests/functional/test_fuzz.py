"""Fuzz every REST route and every MCP tool of the real app: never a 5xx, and a refusal changes nothing.

Hypothesis drives the real Chalice app in-process (chalice.test.Client) against the stack's moto
server with random JSON shapes, wrong types, deep nesting, huge strings and odd headers and cookies.
For every request: the status is below 500; a refusal is a JSON error (REST: 4xx with ``error`` and
``message``; MCP: a JSON-RPC error or an ``isError`` result) and leaves the world as it was — the
sessions, the fuzzed session's status, sequence, master and participants, every queue, every stored
document, and (for the queue operations) the messages in the browsers' queues. Successful calls may
change the world; the next request is compared with the world after them. ``max_examples`` keeps the
whole module well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalice_app import operations  # noqa: F401  (importing registers the operations)
from chalice_app.aws import build_clients
from chalice_app.registry import Operation, registry
from pbfm_tooling.local_stack import LocalStack
from tests.conftest import TEST_OVERRIDES

REST_OPERATIONS = registry.operations("rest")
MCP_TOOLS = registry.operations("mcp")
assert REST_OPERATIONS and MCP_TOOLS, "an empty registry would make every fuzz test an empty (skipped) set"
FUZZ = settings(max_examples=12, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@dataclass
class World:
    """The fuzzed session and two joined browsers of it (a master and an observer)."""

    client: Client
    stack: LocalStack
    sqs: Any  # our own boto3 client: the service's queues are only a Protocol to us
    session_id: str
    master_cookie: str
    observer_cookie: str
    master_id: str
    observer_id: str
    queue_urls: tuple[str, ...]  # the two browsers' live and history queues
    last_snapshot: dict[str, Any] | None = None


# The fuzz's own table, bucket and queue prefix: the snapshot lists every session, queue and
# document, which stays cheap only without the other tests' leftovers. (moto servers in one process
# share one state, so a second server alone would not separate them: the names do.)
FUZZ_RESOURCES = {"PBFM_TABLE": "pb-fm-fuzz-sessions", "PBFM_BUCKET": "pb-fm-fuzz-assets",
                  "PBFM_QUEUE_PREFIX": "pb-fm-fuzz"}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    session_id = "fz-" + secrets.token_hex(4)
    saved_environment = dict(os.environ)  # a stack writes its settings into os.environ
    try:
        with LocalStack(overrides={**TEST_OVERRIDES, **FUZZ_RESOURCES}) as stack, Client(stack.app) as client:
            yield from _joined_world(stack, client, session_id)
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)


def _joined_world(stack: LocalStack, client: Client, session_id: str) -> Iterator[World]:
    headers = {"Content-Type": "application/json", "X-PBFM-Tab": "t1"}
    body = json.dumps({"session_id": session_id})
    assert client.http.post("/api/webpage_create_session", body=body, headers=headers).status_code == 200
    joined = [client.http.post("/api/webpage_join_session", body=body, headers=headers) for _ in range(2)]
    cookies = [{k.lower(): v for k, v in j.headers.items()}["set-cookie"].split(";", 1)[0] for j in joined]
    browsers = [stack.service.store.get_client(session_id, j.json_body["client_id"]) for j in joined]
    queues = tuple(url for b in browsers if b is not None for url in (b.live_queue_url, b.history_queue_url))
    yield World(client, stack, build_clients(stack.settings).sqs, session_id, cookies[0], cookies[1],
                joined[0].json_body["client_id"], joined[1].json_body["client_id"], queues)


# Only these touch messages without publishing (which the session's sequence number shows); counting
# messages costs four SQS calls, so the other requests skip it.
QUEUE_OPERATIONS = frozenset({"webpage_poll_queue", "webpage_delete_message"})


def snapshot(world: World, *, messages: bool) -> dict[str, Any]:
    """Everything a refused call must leave alone (heartbeat times excepted: they are not state)."""
    service = world.stack.service
    session = service.store.get_session(world.session_id)
    assert session is not None
    sqs = world.sqs
    seen: dict[str, Any] = {
        "sessions": service.store.active_session_ids(),
        "session": (session.status, session.seq, session.master_client_id, session.title),
        "clients": sorted((c.client_id, c.status) for c in service.store.list_clients(world.session_id,
                                                                                          active_only=False)),
        "queues": sorted(sqs.list_queues(QueueNamePrefix=FUZZ_RESOURCES["PBFM_QUEUE_PREFIX"], MaxResults=1000
                                         ).get("QueueUrls", [])),
        "documents": sorted(service.blobs.list_keys("")),
    }
    if messages:
        counts = {}
        for url in world.queue_urls:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            # Visible + in flight: a poll moves messages between the two; only a delete or a send changes the sum.
            counts[url] = sum(int(v) for v in attributes.values())
        seen["messages"] = counts
    return seen


def before(world: World, *, messages: bool) -> dict[str, Any]:
    # Requests run one at a time and nothing runs between them, so the world compared after a
    # refusal is the world before the next request. After a success (or a failed check) it is
    # looked at afresh.
    known, world.last_snapshot = world.last_snapshot, None
    if known is not None and ("messages" in known) == messages:
        return known
    return snapshot(world, messages=messages)


def after(world: World, *, messages: bool) -> dict[str, Any]:
    world.last_snapshot = snapshot(world, messages=messages)
    return world.last_snapshot


# -- strategies --------------------------------------------------------------------------------

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=12)
FOREIGN_COOKIES = st.sampled_from(['prefs={"theme":"dark"}', 'x="a', "note=hello world", "list=a,b", "=foo",
                                   "bare", "arr=[1,2]", "expires=Thu, 01 Jan 1970 00:00:00 GMT", "$Version=1"])


def blocks() -> st.SearchStrategy[Any]:
    text_block = st.fixed_dictionaries({"kind": st.just("text"), "text": st.text(max_size=50)},
                                       optional={"style": st.sampled_from(["heading", "note", "marquee"])})
    chart = st.fixed_dictionaries({"kind": st.just("chart"), "points": st.lists(SCALARS, max_size=5)})
    rows = st.fixed_dictionaries({"kind": st.just("key_value"), "rows": st.lists(st.lists(SCALARS, max_size=3),
                                                                                 max_size=3)})
    odd = st.fixed_dictionaries({"kind": st.sampled_from(["html", "script", "price_card"])},
                                optional={"html": st.just("<script>alert(1)</script>")})
    return st.lists(text_block | chart | rows | odd | JSON, max_size=4)


def field_values(world: World, name: str) -> st.SearchStrategy[Any]:
    """Plausible values for a field (so that calls get past validation), mixed with anything at all."""
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "session_id": st.sampled_from([world.session_id, "fz-unknown", "", "a" * 25, "../x", "ß"]),
        "client_id": st.sampled_from([world.master_id, world.observer_id, "zzzzzzzzzzzz", "A" * 12]),
        "queue": st.sampled_from(["live", "history", "other", "../live"]),
        "receipt_handles": st.lists(st.sampled_from(["r1", "", "x" * 3000]) | st.text(max_size=20), max_size=12),
        "wait_seconds": st.sampled_from([0, -1, 21, 1.5, "0"]),
        "max_messages": st.sampled_from([1, 10, 0, 11, "1"]),
        "after_seq": st.sampled_from([0, 1, -1, 2**63]),
        "limit": st.sampled_from([1, 500, 0, 501]),
        "content": st.fixed_dictionaries({"blocks": blocks()}, optional={"title": st.text(max_size=210)}),
        "source": st.sampled_from(["simulated", "nyse", None]),
        "kind": st.sampled_from(["price", "layout", "dataset", "secrets"]),
        "title": st.text(max_size=210),
        "reason": st.text(max_size=210),
    }
    return plausible.get(name, st.nothing()) | JSON


def arguments(world: World, op: Operation) -> st.SearchStrategy[Any]:
    fields = {name: field_values(world, name) for name in op.input_model.model_fields}
    known = st.fixed_dictionaries({}, optional=fields)
    extra = st.dictionaries(st.text(max_size=10), JSON, max_size=2)
    return st.one_of(known, known, st.tuples(known, extra).map(lambda pair: {**pair[1], **pair[0]}), JSON)


def deep(depth: int, inside: str = "") -> str:
    return "[" * depth + inside + "]" * depth


def rest_body(world: World, op: Operation) -> st.SearchStrategy[bytes]:
    as_json = arguments(world, op).map(lambda value: json.dumps(value).encode())
    nested = st.integers(min_value=30, max_value=100_000).map(lambda n: deep(n).encode())
    nested_field = st.integers(min_value=30, max_value=5_000).map(
        lambda n: f'{{"session_id": "{world.session_id}", "x": {deep(n)}}}'.encode())
    huge = st.sampled_from([300_000, 1_000_000]).map(
        lambda n: json.dumps({"session_id": world.session_id, "title": "x" * n}).encode())
    junk = st.binary(max_size=64) | st.sampled_from([b"", b"NaN", b"Infinity", b"[1,", b'"\\ud800"', b"\xff"])
    return st.one_of(as_json, as_json, as_json, nested, nested_field, huge, junk)


def cookie_header(world: World) -> st.SearchStrategy[str | None]:
    ours = st.sampled_from([world.master_cookie, world.observer_cookie, world.master_cookie[:-1] + "0",
                            f"pbfm_{world.session_id}=garbage"])
    pieces = st.lists(ours | FOREIGN_COOKIES | HEADER_TEXT, min_size=1, max_size=4)
    return st.none() | pieces.map("; ".join)


def rest_headers(world: World) -> st.SearchStrategy[dict[str, str]]:
    optional = {
        "Cookie": cookie_header(world),
        "X-PBFM-Tab": st.sampled_from(["t1", "", "<script>", "x" * 40]) | HEADER_TEXT,
        "Origin": st.sampled_from(["https://evil.example", "null"]) | HEADER_TEXT,
    }
    content_type = st.sampled_from(["application/json"] * 6 + ["application/json; charset=utf-8", "text/plain",
                                                               "multipart/form-data", None])
    return st.fixed_dictionaries({"Content-Type": content_type}, optional=optional).map(
        lambda headers: {k: v for k, v in headers.items() if v is not None})


def tame(op_name: str, body: bytes, world: World) -> bytes:
    """Keep successful calls quick and the fuzzed session alive (a REST body or an MCP tools/call)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(value, dict):
        return body
    params = value.get("params")
    arguments = params.get("arguments") if isinstance(params, dict) else value
    if isinstance(params, dict) and isinstance(params.get("name"), str):
        op_name = params["name"]
    if not isinstance(arguments, dict):
        return body
    # A valid long poll really waits (up to 20 s).
    if op_name == "webpage_poll_queue" and arguments.get("wait_seconds", 20) not in (-1, 21, 1.5, "0"):
        arguments["wait_seconds"] = 0
    # The real price sources need the internet.
    if arguments.get("source") in ("auto", "figure_markets"):
        arguments["source"] = "simulated"
    # Ending the fuzzed session would turn every later call into a plain 404.
    if op_name == "webpage_end_session" and arguments.get("session_id") == world.session_id:
        arguments["session_id"] = "fz-unknown"
    return json.dumps(value).encode()


# -- the checks ----------------------------------------------------------------------------------

def json_of(response: Any) -> Any:
    body = response.body.decode("utf-8") if isinstance(response.body, bytes) else response.body
    return json.loads(body)


def check_rest(world: World, op: Operation, body: bytes, headers: dict[str, str]) -> None:
    messages = op.name in QUEUE_OPERATIONS
    was = before(world, messages=messages)
    response = world.client.http.post(op.path, body=body, headers=headers)
    assert response.status_code < 500, (op.name, response.status_code, response.body[:300])
    payload = json_of(response)
    if response.status_code == 200:
        return
    assert 400 <= response.status_code < 500, (op.name, response.status_code)
    if response.status_code == 415:  # Chalice refuses a non-JSON Content-Type before our code runs
        assert payload["Code"] == "UnsupportedMediaType" and headers["Content-Type"] in payload["Message"]
    else:
        assert isinstance(payload.get("error"), str) and isinstance(payload.get("message"), str), payload
    assert after(world, messages=messages) == was, (op.name, response.status_code, payload)


def check_mcp(world: World, message: bytes, headers: dict[str, str]) -> None:
    was = before(world, messages=False)
    response = world.client.http.post("/mcp", body=message, headers=headers)
    assert response.status_code < 500, (response.status_code, response.body[:300])
    if response.status_code == 202:  # a notification or a response sent to us: nothing happens
        assert response.body in (b"", "")
        assert after(world, messages=False) == was
        return
    payload = json_of(response)
    assert payload.get("jsonrpc") == "2.0", payload
    if "error" in payload:
        assert isinstance(payload["error"]["code"], int) and isinstance(payload["error"]["message"], str)
        assert after(world, messages=False) == was, payload
        return
    assert response.status_code == 200, payload
    result = payload["result"]
    if isinstance(result, dict) and result.get("isError") is True:
        assert "structuredContent" not in result
        assert [block["type"] for block in result["content"]] == ["text"]
        assert after(world, messages=False) == was, result


# -- REST: every route -----------------------------------------------------------------------

@pytest.mark.parametrize("op", REST_OPERATIONS, ids=[op.name for op in REST_OPERATIONS])
@FUZZ
@given(data=st.data())
def test_rest_routes_refuse_hostile_input_cleanly(world: World, op: Operation, data: st.DataObject) -> None:
    body = tame(op.name, data.draw(rest_body(world, op), label="body"), world)
    check_rest(world, op, body, data.draw(rest_headers(world), label="headers"))


# -- MCP: every tool, and anything shaped (or not) like JSON-RPC -----------------------------------

MCP_HEADERS = st.fixed_dictionaries(
    {"Content-Type": st.just("application/json"), "Accept": st.just("application/json, text/event-stream")},
    optional={
        "MCP-Protocol-Version": st.sampled_from(["2025-11-25", "2025-03-26", "2099-01-01", ""]),
        "Origin": st.sampled_from(["https://evil.example", "http://localhost:1", "null"]),
        "Authorization": st.sampled_from(["Bearer x", "Basic Zm9v", ""]) | HEADER_TEXT,
        "Cookie": FOREIGN_COOKIES,
    },
)
REQUEST_IDS = st.integers(min_value=-5, max_value=2**53) | st.text(max_size=10)


@pytest.mark.parametrize("op", MCP_TOOLS, ids=[op.name for op in MCP_TOOLS])
@settings(FUZZ, max_examples=6)
@given(data=st.data())
def test_mcp_tools_refuse_hostile_arguments_cleanly(world: World, op: Operation, data: st.DataObject) -> None:
    params = data.draw(st.fixed_dictionaries({"name": st.just(op.name)}, optional={
        "arguments": arguments(world, op), "_meta": JSON}), label="params")
    message = {"jsonrpc": "2.0", "id": data.draw(REQUEST_IDS, label="id"), "method": "tools/call", "params": params}
    body = tame(op.name, json.dumps(message).encode(), world)
    if data.draw(st.booleans(), label="nest the arguments"):
        depth = data.draw(st.integers(min_value=30, max_value=100_000), label="depth")
        body = body.replace(b'"params": {', f'"params": {{"deep": {deep(depth)}, '.encode(), 1)
    check_mcp(world, body, data.draw(MCP_HEADERS.filter(lambda h: "Origin" not in h), label="headers"))


JSON_RPC_SHAPES = st.one_of(
    JSON,
    st.fixed_dictionaries({}, optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0"]) | JSON,
        "id": REQUEST_IDS | JSON,
        "method": st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "notifications/initialized",
                                   "server/discover", "resources/list"]) | JSON,
        "params": st.fixed_dictionaries({}, optional={
            "name": st.sampled_from([op.name for op in MCP_TOOLS] + ["nope"]) | JSON,
            "arguments": JSON, "protocolVersion": st.sampled_from(["2025-11-25", "1999-01-01"]) | JSON}) | JSON,
        "result": JSON, "error": JSON,
    }),
)


@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_mcp_refuses_any_hostile_message_cleanly(world: World, data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from(["json", "json", "deep", "huge", "bytes"]), label="shape")
    if shape == "json":
        body = json.dumps(data.draw(JSON_RPC_SHAPES, label="message")).encode()
    elif shape == "deep":
        body = deep(data.draw(st.integers(min_value=30, max_value=100_000), label="depth")).encode()
    elif shape == "huge":
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "y" * 600_000}}).encode()
    else:
        body = data.draw(st.binary(max_size=64), label="bytes")
    check_mcp(world, tame("", body, world), data.draw(MCP_HEADERS, label="headers"))
