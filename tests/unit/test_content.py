"""The content vocabulary as the page parses it (web_py/content.py through web_py/rules.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import pytest

from web_py.content import (
    DEFAULT_LAYOUT,
    MAX_BLOCKS,
    MAX_POINTS,
    MAX_ROWS,
    MAX_SHORT_TEXT,
    MAX_TEXT,
    ChartBlock,
    KeyValueBlock,
    KeyValueRow,
    Layout,
    PriceCardBlock,
    PriceQuote,
    TextBlock,
)
from web_py.messages import MessageError
from web_py.rules import Document, Rule, document_fields


def full_layout() -> dict[str, Any]:
    return {
        "title": "HASH today",
        "blocks": [
            {"kind": "price_card"},
            {"kind": "text", "text": "Market summary", "style": "heading"},
            {"kind": "key_value", "title": "24h", "rows": [{"key": "High", "value": "0.031"},
                                                           {"key": "Low", "value": ""}]},
            {"kind": "chart", "title": "Last hour", "points": [1, 2.5, -3], "labels": ["a", "b", "c"]},
            {"kind": "key_value", "rows": []},
        ],
    }


def quote(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "symbol": "HASH-USD", "display_price": "0.030", "mid_market_price": "0.030",
        "last_traded_price": None, "best_bid": "0.029", "best_ask": "0.031", "index_price": None,
        "change_24h": "0.001", "change_24h_fraction": "0.0199", "volume_24h": "1000",
        "high_24h": "0.031", "low_24h": "0.029", "trade_count_24h": 3, "source": "simulated",
        "fetched_at": 1_700_000_000.5,
    }
    data.update(overrides)
    return data


def test_layout_round_trips_through_json() -> None:
    layout = Layout.from_dict(full_layout())
    text = json.dumps(layout.to_dict())
    assert Layout.from_dict(json.loads(text)) == layout
    assert layout.to_dict() == full_layout()


def test_parsed_blocks_have_the_right_types_and_values() -> None:
    layout = Layout.from_dict(full_layout())
    kinds = [type(b) for b in layout.blocks]
    assert kinds == [PriceCardBlock, TextBlock, KeyValueBlock, ChartBlock, KeyValueBlock]
    kv = layout.blocks[2]
    assert isinstance(kv, KeyValueBlock)
    assert kv.rows == (KeyValueRow("High", "0.031"), KeyValueRow("Low", ""))
    chart = layout.blocks[3]
    assert isinstance(chart, ChartBlock)
    assert chart.points == (1, 2.5, -3)
    assert chart.labels == ("a", "b", "c")


def test_layout_is_hashable_and_comparable() -> None:
    assert hash(Layout.from_dict(full_layout())) == hash(Layout.from_dict(full_layout()))


def test_optional_fields_may_be_left_out_or_null_and_are_omitted_when_unset() -> None:
    layout = Layout.from_dict({"blocks": [{"kind": "chart", "points": [1]}, {"kind": "text", "text": "x"}]})
    assert layout.title is None
    assert layout.to_dict() == {"blocks": [{"kind": "chart", "points": [1]},
                                           {"kind": "text", "text": "x", "style": "paragraph"}]}
    explicit = Layout.from_dict({"title": None, "blocks": [{"kind": "chart", "points": [1], "labels": None}]})
    assert explicit == Layout(blocks=(ChartBlock(points=(1,)),))


def test_default_layout_is_just_the_price_card() -> None:
    assert DEFAULT_LAYOUT.to_dict() == {"blocks": [{"kind": "price_card"}]}


def test_layouts_stored_with_pair_rows_stay_readable() -> None:
    # Before rows became objects they were [key, value] pairs; such documents may still be in S3.
    old = {"blocks": [{"kind": "key_value", "rows": [["High", "0.031"], ["Low", ""]]}]}
    layout = Layout.from_dict(old)
    assert layout.blocks[0] == KeyValueBlock(rows=(KeyValueRow("High", "0.031"), KeyValueRow("Low", "")))
    assert layout.to_dict()["blocks"][0]["rows"] == [{"key": "High", "value": "0.031"}, {"key": "Low", "value": ""}]
    with pytest.raises(MessageError, match="must not be empty"):
        Layout.from_dict({"blocks": [{"kind": "key_value", "rows": [["", "v"]]}]})


def test_blocks_built_in_python_validate_too() -> None:
    with pytest.raises(MessageError, match="style"):
        TextBlock(text="hi", style="shout")  # type: ignore[arg-type]
    with pytest.raises(MessageError, match="labels"):
        ChartBlock(points=(1, 2), labels=("a",))
    with pytest.raises(MessageError, match="must be one of"):
        Layout(blocks=({"kind": "price_card"},))  # type: ignore[arg-type]
    # Lists from a caller become tuples, so the block stays hashable.
    assert ChartBlock(points=[1, 2]).points == (1, 2)  # type: ignore[arg-type]


def _with_block(block: Any) -> dict[str, Any]:
    return {"blocks": [block]}


def _rows(n: int) -> list[dict[str, str]]:
    return [{"key": "k", "value": "v"}] * n


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "JSON object"),
        ({"title": "x"}, "missing"),
        ({"blocks": [{"kind": "price_card"}], "colour": "red"}, "unknown fields"),
        ({"title": 3, "blocks": [{"kind": "price_card"}]}, "layout.title must be a string, got integer"),
        ({"title": "x" * 201, "blocks": [{"kind": "price_card"}]}, "at most 200"),
        ({"title": "", "blocks": [{"kind": "price_card"}]}, "must not be empty"),
        ({"blocks": {}}, "must be an array"),
        ({"blocks": []}, "at least 1"),
        ({"blocks": [{"kind": "price_card"}] * (MAX_BLOCKS + 1)}, "at most"),
        (_with_block({"kind": "video"}), "unknown kind 'video'"),
        (_with_block({"text": "no kind"}), "unknown kind None"),
        (_with_block("price_card"), "JSON object"),
        (_with_block({"kind": "price_card", "extra": 1}), "unknown fields"),
        (_with_block({"kind": "text"}), "missing"),
        (_with_block({"kind": "text", "text": "x", "style": "huge"}), "style must be one of"),
        (_with_block({"kind": "text", "text": "x", "style": None}), "must not be null"),
        (_with_block({"kind": "text", "text": 5, "style": "note"}), "must be a string"),
        (_with_block({"kind": "text", "text": "", "style": "note"}), "must not be empty"),
        (_with_block({"kind": "text", "text": "x" * (MAX_TEXT + 1)}), "at most 10000"),
        (_with_block({"kind": "text", "text": "\ud800"}), "not valid Unicode"),
        (_with_block({"kind": "key_value", "rows": [["a"]]}), "JSON object"),
        (_with_block({"kind": "key_value", "rows": [["a", "b", "c"]]}), "JSON object"),
        (_with_block({"kind": "key_value", "rows": [{"key": "a", "value": 1}]}), "value must be a string"),
        (_with_block({"kind": "key_value", "rows": [{"key": "a"}]}), "missing"),
        (_with_block({"kind": "key_value", "rows": [{"key": "a" * 201, "value": ""}]}), "key is 201"),
        (_with_block({"kind": "key_value", "rows": "a=b"}), "must be an array"),
        (_with_block({"kind": "key_value", "rows": _rows(MAX_ROWS + 1)}), "at most 100"),
        (_with_block({"kind": "chart", "points": [1, True]}), r"points\[1\] must be a number, got boolean"),
        (_with_block({"kind": "chart", "points": ["1"]}), "must be a number"),
        (_with_block({"kind": "chart", "points": []}), "at least 1"),
        (_with_block({"kind": "chart", "points": [float("nan")]}), "finite"),
        (_with_block({"kind": "chart", "points": [float("inf")]}), "finite"),
        (_with_block({"kind": "chart", "points": [10**400]}), "finite"),
        (_with_block({"kind": "chart", "points": [0] * (MAX_POINTS + 1)}), "at most 1000"),
        (_with_block({"kind": "chart", "points": [1, 2], "labels": ["a"]}), "must match"),
        (_with_block({"kind": "chart", "points": [1], "labels": [1]}), r"labels\[0\] must be a string"),
        (_with_block({"kind": "chart", "points": [1], "labels": ["x" * 201]}), "at most 200"),
        (_with_block({"kind": "chart", "points": [1], "colour": "red"}), "unknown fields"),
    ],
)
def test_malformed_layouts_are_refused_with_a_reason(document: Any, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        Layout.from_dict(document)


def test_errors_name_the_field_path() -> None:
    with pytest.raises(MessageError) as caught:
        Layout.from_dict({"blocks": [{"kind": "price_card"}, {"kind": "key_value", "rows": [{"key": 1, "value": ""}]}]})
    assert str(caught.value) == "layout.blocks[1].rows[0].key must be a string, got integer"


def test_limits_are_inclusive() -> None:
    layout = Layout.from_dict(
        {
            "title": "t" * MAX_SHORT_TEXT,
            "blocks": [
                {"kind": "text", "text": "x" * MAX_TEXT, "style": "paragraph"},
                {"kind": "key_value", "rows": [{"key": "k" * MAX_SHORT_TEXT, "value": "v" * MAX_TEXT}] * MAX_ROWS},
                {"kind": "chart", "points": [0.5] * MAX_POINTS, "labels": [""] * MAX_POINTS},
            ]
            + [{"kind": "price_card"}] * (MAX_BLOCKS - 3),
        }
    )
    assert len(layout.blocks) == MAX_BLOCKS


def test_a_block_class_refuses_another_kind() -> None:
    with pytest.raises(MessageError, match="must have kind 'text'"):
        TextBlock.from_dict({"kind": "chart", "text": "x", "style": "note"})
    assert PriceCardBlock.from_dict({"kind": "price_card"}) == PriceCardBlock()


def test_price_quote_round_trips_and_reports_percent() -> None:
    price = PriceQuote.from_dict(quote())
    assert PriceQuote.from_dict(json.loads(json.dumps(price.to_dict()))) == price
    assert price.to_dict() == quote()
    assert price.change_24h_percent == "1.99"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"display_price": None}, "display_price"),
        ({"best_bid": 0.029}, "best_bid must be a string"),
        ({"best_ask": "NaN"}, "finite"),
        ({"best_ask": "cheap"}, "not a decimal"),
        ({"trade_count_24h": True}, "trade_count_24h"),
        ({"source": "guess"}, "source"),
        ({"symbol": ""}, "symbol must not be empty"),
        ({"fetched_at": "now"}, "fetched_at must be a number"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_malformed_price_quotes_are_refused(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        PriceQuote.from_dict(quote(**overrides))


def test_a_missing_price_field_is_refused() -> None:
    data = quote()
    del data["low_24h"]
    with pytest.raises(MessageError, match=r"missing \['low_24h'\]"):
        PriceQuote.from_dict(data)


@pytest.mark.parametrize("cls", [PriceQuote, PriceCardBlock, TextBlock, KeyValueRow, KeyValueBlock, ChartBlock, Layout])
def test_every_field_is_described(cls: type[Document]) -> None:
    # document_fields refuses a field without a Rule; the description must also say something.
    assert all(len(spec.rule.description) > 10 for spec in document_fields(cls))


def test_a_field_without_a_rule_or_of_an_unsupported_type_is_a_definition_error() -> None:
    @dataclass(frozen=True)
    class Undescribed(Document):
        name: str

    @dataclass(frozen=True)
    class Pair(Document):
        pair: Annotated[tuple[str, str], Rule("a tuple would need prefixItems")]

    with pytest.raises(TypeError, match="needs a Rule"):
        document_fields(Undescribed)
    with pytest.raises(TypeError, match="only tuple"):
        document_fields(Pair)
