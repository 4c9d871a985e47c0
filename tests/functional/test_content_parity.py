"""The server and the page give the same verdict on the same content.

Each input goes through the real operation (``webpage_send_to_browsers`` over MCP, on the real
Chalice app in-process, backed by the stack's moto server) and through the page's own parser
(``web_py.content.Layout.from_dict``, as the page runs it on the stored document). Both must accept
or both must refuse; a refusal changes nothing, an acceptance stores exactly what the page parses.
The one rule on top of the vocabulary is the transport limit: content over
``max_message_bytes`` is refused by the server even when the page could show it.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalice_app.mcp_endpoint import mcp_body_limit
from pbfm_tooling.local_stack import LocalStack
from web_py.content import MAX_BLOCKS, MAX_POINTS, MAX_ROWS, MAX_SHORT_TEXT, MAX_TEXT, TEXT_STYLES, Layout
from web_py.messages import MessageError

# -- the two verdicts -----------------------------------------------------------------------------


class Parity:
    def __init__(self, client: Client, stack: LocalStack, session_id: str) -> None:
        self.client, self.stack, self.session_id = client, stack, session_id

    def events(self) -> int:
        session = self.stack.service.store.get_session(self.session_id)
        assert session is not None
        return session.seq

    def server(self, content: Any) -> str:
        """ "accepted", "refused" or "too_large", checked against what the server stored or did not."""
        before = self.events()
        # allow_nan: a client can send NaN/Infinity literals, and the endpoint's json.loads reads them.
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "webpage_send_to_browsers", "arguments": {"session_id": self.session_id, "content": content}}})
        response = self.client.http.post("/mcp", body=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.body
        answer = response.json_body
        result = answer["result"]
        if result["isError"] and result["content"][0]["text"].startswith("Invalid arguments for "):
            # Arguments that miss the schema: a result the model reads, field by field (SEP-1303).
            assert "\n- content" in result["content"][0]["text"], result
            assert self.events() == before, "a refused call changed the session"
            return "refused"
        if result["isError"]:
            text = result["content"][0]["text"]
            assert "limit" in text, f"unexpected tool failure: {text}"
            assert self.events() == before, "a refused call changed the session"
            return "too_large"
        assert self.events() == before + 1
        stored = self.stack.service.blobs.get_json(result["structuredContent"]["s3_key"])
        assert stored == Layout.from_dict(json.loads(json.dumps(content))).to_dict()
        return "accepted"


def page(content: Any) -> str:
    """The page's verdict on the same JSON; any exception other than MessageError is a parser bug."""
    try:
        Layout.from_dict(json.loads(json.dumps(content)))
    except MessageError:
        return "refused"
    return "accepted"


def expected_server(content: Any, limit: int) -> str:
    verdict = page(content)
    if verdict == "accepted":
        size = len(json.dumps(Layout.from_dict(json.loads(json.dumps(content))).to_dict()))
        return "accepted" if size <= limit else "too_large"
    return verdict


@pytest.fixture(scope="module")
def parity(stack: LocalStack) -> Iterator[Parity]:
    session_id = "parity-" + secrets.token_hex(4)
    stack.service.create_session(session_id, None)
    # The stack's own app: the module-level app builds its service from whatever environment the
    # process has when first used, which other tests' stacks may have changed.
    with Client(stack.app) as client:
        yield Parity(client, stack, session_id)


# -- chosen inputs --------------------------------------------------------------------------------

def one(block: Any) -> dict[str, Any]:
    return {"blocks": [block]}


def chart(points: Any, **extra: Any) -> dict[str, Any]:
    return one({"kind": "chart", "points": points, **extra})


def rows(value: Any) -> dict[str, Any]:
    return one({"kind": "key_value", "rows": value})


ROW = {"key": "k", "value": "v"}

CASES: list[tuple[str, Any, str]] = [
    ("every block kind", {"title": "T", "blocks": [
        {"kind": "price_card"}, {"kind": "text", "text": "hi", "style": "note"},
        {"kind": "key_value", "title": "kv", "rows": [ROW, {"key": "k2", "value": ""}]},
        {"kind": "chart", "title": "c", "points": [1, 2.5, -3], "labels": ["a", "b", "c"]}]}, "accepted"),
    ("optional fields left out", one({"kind": "text", "text": "x"}), "accepted"),
    ("optional fields null", {"title": None, "blocks": [{"kind": "chart", "points": [1], "labels": None,
                                                         "title": None}]}, "accepted"),
    ("limits are inclusive", {"title": "t" * MAX_SHORT_TEXT, "blocks": [
        {"kind": "text", "text": "x" * MAX_TEXT},
        {"kind": "key_value", "rows": [{"key": "k" * MAX_SHORT_TEXT, "value": "v" * 100}] * MAX_ROWS},
        {"kind": "chart", "points": [0.5] * MAX_POINTS, "labels": ["l" * 20] * MAX_POINTS}]
        + [{"kind": "price_card"}] * (MAX_BLOCKS - 3)}, "accepted"),
    ("a long value", rows([{"key": "k", "value": "v" * MAX_TEXT}]), "accepted"),
    ("empty rows", rows([]), "accepted"),
    ("integers beyond 2**64 that fit a float", chart([2**70]), "accepted"),
    ("over-long text", one({"kind": "text", "text": "x" * (MAX_TEXT + 1)}), "refused"),
    ("over-long title", {"title": "t" * (MAX_SHORT_TEXT + 1), "blocks": [{"kind": "price_card"}]}, "refused"),
    ("over-long key", rows([{"key": "k" * (MAX_SHORT_TEXT + 1), "value": ""}]), "refused"),
    ("over-long value", rows([{"key": "k", "value": "v" * (MAX_TEXT + 1)}]), "refused"),
    ("over-long label", chart([1], labels=["l" * (MAX_SHORT_TEXT + 1)]), "refused"),
    ("empty text", one({"kind": "text", "text": ""}), "refused"),
    ("empty title", {"title": "", "blocks": [{"kind": "price_card"}]}, "refused"),
    ("empty key", rows([{"key": "", "value": "v"}]), "refused"),
    ("too many blocks", {"blocks": [{"kind": "price_card"}] * (MAX_BLOCKS + 1)}, "refused"),
    ("no blocks", {"blocks": []}, "refused"),
    ("too many rows", rows([ROW] * (MAX_ROWS + 1)), "refused"),
    ("too many points", chart([1] * (MAX_POINTS + 1)), "refused"),
    ("no points", chart([]), "refused"),
    ("labels do not match points", chart([1, 2], labels=["a"]), "refused"),
    ("unknown kind", one({"kind": "video", "url": "x"}), "refused"),
    ("no kind", one({"text": "x"}), "refused"),
    ("kind of the wrong type", one({"kind": 7}), "refused"),
    ("unknown style", one({"kind": "text", "text": "x", "style": "shout"}), "refused"),
    ("null style", one({"kind": "text", "text": "x", "style": None}), "refused"),
    ("extra field on the layout", {"blocks": [{"kind": "price_card"}], "theme": "dark"}, "refused"),
    ("extra field on a block", one({"kind": "price_card", "html": "<b>"}), "refused"),
    ("extra field on a row", rows([{**ROW, "colour": "red"}]), "refused"),
    ("NaN point", chart([math.nan]), "refused"),
    ("infinite point", chart([math.inf]), "refused"),
    ("-infinite point", chart([-math.inf]), "refused"),
    ("integer beyond the float range", chart([10**400]), "refused"),
    ("boolean point", chart([True]), "refused"),
    ("numeric string point", chart(["1"]), "refused"),
    ("null point", chart([None]), "refused"),
    ("number as text", one({"kind": "text", "text": 5}), "refused"),
    ("lone surrogate in text", one({"kind": "text", "text": "a\ud800b"}), "refused"),
    ("row as a 1-item array", rows([["k"]]), "refused"),
    ("row as a 3-item array", rows([["k", "v", "w"]]), "refused"),
    ("row as a string", rows(["k=v"]), "refused"),
    ("rows as an object", rows({"k": "v"}), "refused"),
    ("blocks as an object", {"blocks": {"kind": "price_card"}}, "refused"),
    ("block as a string", {"blocks": ["price_card"]}, "refused"),
    ("content as a list", [{"kind": "price_card"}], "refused"),
    ("content as a string", "price_card", "refused"),
    ("content null", None, "refused"),
    ("too large for a message", {"blocks": [{"kind": "text", "text": "y" * 9_000}] * 40}, "too_large"),
]


@pytest.mark.parametrize(("content", "verdict"), [pytest.param(c, v, id=name) for name, c, v in CASES])
def test_server_and_page_agree_on_chosen_inputs(parity: Parity, content: Any, verdict: str) -> None:
    limit = parity.stack.service.settings.max_message_bytes
    assert expected_server(content, limit) == verdict  # the page's verdict, plus the size rule
    assert parity.server(content) == verdict


def test_pair_rows_of_old_stored_documents_are_read_by_the_page_only(parity: Parity) -> None:
    # The one deliberate difference: layouts stored before rows became {key, value} objects must
    # stay readable, while new content must use the object form the schema advertises.
    old = rows([["k", "v"]])
    assert page(old) == "accepted"
    assert parity.server(old) == "refused"


# -- generated inputs -----------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([10**400, 2**70, -(2**64)]),
    st.floats(), st.text(max_size=3), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def chance(draw: st.DrawFn, one_in: int) -> bool:
    # Compared with a middle value: Hypothesis favours the bounds of a range, which would make the
    # "rare" branch common.
    return draw(st.integers(0, one_in - 1)) == one_in // 2


@st.composite
def rarely(draw: st.DrawFn, usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], one_in: int = 15) -> Any:
    """Mostly ``usual``, one time in ``one_in`` ``odd``: each layout then has few faults, often none."""
    return draw(odd if chance(draw, one_in) else usual)


def text_of(usual_lengths: list[int], edge_lengths: list[int]) -> st.SearchStrategy[str]:
    length = rarely(st.sampled_from(usual_lengths), st.sampled_from(edge_lengths), 6)
    char = rarely(st.sampled_from(["x", "é", " ", "<", "&", "\n"]), st.just("\ud800"), 25)
    return st.builds(lambda n, c: c * n, length, char)


SHORT = text_of([1, 2, 5], [0, MAX_SHORT_TEXT - 1, MAX_SHORT_TEXT, MAX_SHORT_TEXT + 1])
LONG = text_of([1, 3, 40], [0, MAX_TEXT, MAX_TEXT + 1])
NUMBER = rarely(st.one_of(st.integers(-10, 10), st.floats(-1e6, 1e6)),
                st.one_of(st.floats(), st.integers(2**62, 2**66), st.sampled_from([10**400, -(10**400)])), 8)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return rarely(valid, JUNK)


@st.composite
def array(draw: st.DrawFn, item: st.SearchStrategy[Any], counts: list[int], edges: list[int]) -> Any:
    if chance(draw, 30):
        return draw(JUNK)
    count = draw(rarely(st.sampled_from(counts), st.sampled_from(edges), 6))
    if count > 5:  # long arrays repeat one item: cheap, and still exercises the count limits
        return [draw(item)] * count
    return draw(st.lists(item, min_size=count, max_size=count))


@st.composite
def document(draw: st.DrawFn, kind: str | None, required: dict[str, Any], optional: dict[str, Any]) -> Any:
    data: dict[str, Any] = {}
    if kind is not None:
        data["kind"] = draw(rarely(st.just(kind), st.one_of(st.sampled_from(["text", "chart", "video"]), JUNK), 25))
    for name, strategy in required.items():
        if not chance(draw, 40):  # now and then a required field is missing
            data[name] = draw(strategy)
    for name, strategy in optional.items():
        if draw(st.booleans()):
            data[name] = draw(rarely(strategy, st.none(), 4))
    if chance(draw, 40):
        data[draw(st.sampled_from(["extra", "html", "style", "rows"]))] = 1
    return data


@st.composite
def chart_block(draw: st.DrawFn) -> Any:
    block = draw(document("chart", {"points": array(mostly(NUMBER), [1, 2, 3], [0, MAX_POINTS, MAX_POINTS + 1])},
                          {"title": mostly(SHORT)}))
    points = block.get("points")
    if isinstance(points, list) and draw(st.booleans()):
        # Mostly as many labels as points; sometimes one more.
        count = len(points) + (1 if chance(draw, 10) else 0)
        labels = st.lists(mostly(SHORT), min_size=count, max_size=count) if count <= 5 else mostly(SHORT).map(
            lambda label: [label] * count)
        block["labels"] = draw(mostly(labels))
    return block


# Arrays as rows, but never [key, value] pairs of strings: those are the old stored form (above).
ROW_STRATEGY = rarely(
    document(None, {"key": mostly(SHORT), "value": mostly(LONG)}, {}),
    st.one_of(st.lists(st.text(max_size=2), min_size=1, max_size=1),
              st.lists(st.text(max_size=2), min_size=3, max_size=3)),
)
BLOCK = st.one_of(
    document("price_card", {}, {}),
    document("text", {"text": mostly(LONG)}, {"style": mostly(st.sampled_from(TEXT_STYLES))}),
    document("key_value", {"rows": array(ROW_STRATEGY, [0, 1, 2], [MAX_ROWS, MAX_ROWS + 1])}, {"title": mostly(SHORT)}),
    chart_block(),
)
LAYOUT = mostly(
    document(None, {"blocks": array(mostly(BLOCK), [1, 2, 3], [0, MAX_BLOCKS, MAX_BLOCKS + 1])},
             {"title": mostly(SHORT)}),
)


@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(content=LAYOUT)
def test_server_and_page_agree_on_generated_inputs(parity: Parity, content: Any) -> None:
    limit = parity.stack.service.settings.max_message_bytes
    # Past /mcp's body cap the transport refuses before any tool sees the content (413, tested in
    # test_hostile_input); the verdicts compared here are the tool's and the page's.
    assume(len(json.dumps(content, default=str)) < mcp_body_limit(parity.stack.service.settings) - 4096)
    assert parity.server(content) == expected_server(content, limit)
