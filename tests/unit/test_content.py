from __future__ import annotations

import json
from typing import Any

import pytest

from web_py.content import (
    DEFAULT_LAYOUT,
    MAX_BLOCKS,
    MAX_POINTS,
    MAX_ROWS,
    MAX_TEXT,
    ChartBlock,
    KeyValueBlock,
    Layout,
    PriceCardBlock,
    PriceQuote,
    TextBlock,
    block_from_dict,
)
from web_py.messages import MessageError


def full_layout() -> dict[str, Any]:
    return {
        "title": "HASH today",
        "blocks": [
            {"kind": "price_card"},
            {"kind": "text", "text": "Market summary", "style": "heading"},
            {"kind": "key_value", "title": "24h", "rows": [["High", "0.031"], ["Low", "0.029"]]},
            {"kind": "chart", "title": "Last hour", "points": [1, 2.5, -3], "labels": ["a", "b", "c"]},
            {"kind": "chart", "points": []},
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
    assert kinds == [PriceCardBlock, TextBlock, KeyValueBlock, ChartBlock, ChartBlock, KeyValueBlock]
    kv = layout.blocks[2]
    assert isinstance(kv, KeyValueBlock)
    assert kv.rows == (("High", "0.031"), ("Low", "0.029"))
    chart = layout.blocks[3]
    assert isinstance(chart, ChartBlock)
    assert chart.points == (1, 2.5, -3)
    assert chart.labels == ("a", "b", "c")


def test_layout_is_hashable_and_comparable() -> None:
    assert hash(Layout.from_dict(full_layout())) == hash(Layout.from_dict(full_layout()))


def test_missing_title_means_none_and_optional_fields_are_omitted() -> None:
    layout = Layout.from_dict({"blocks": [{"kind": "chart", "points": [1]}]})
    assert layout.title is None
    assert layout.to_dict() == {"title": None, "blocks": [{"kind": "chart", "points": [1]}]}


def test_default_layout_is_just_the_price_card() -> None:
    assert DEFAULT_LAYOUT.to_dict() == {"title": None, "blocks": [{"kind": "price_card"}]}


def test_blocks_built_in_python_validate_too() -> None:
    with pytest.raises(MessageError, match="style"):
        TextBlock(text="hi", style="shout")
    with pytest.raises(MessageError, match="labels"):
        ChartBlock(points=(1, 2), labels=("a",))
    with pytest.raises(MessageError, match="not a block"):
        Layout(title=None, blocks=({"kind": "price_card"},))  # type: ignore[arg-type]


def _with_block(block: Any) -> dict[str, Any]:
    return {"title": None, "blocks": [block]}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "JSON object"),
        ({"title": "x"}, "missing"),
        ({"blocks": [], "colour": "red"}, "unknown fields"),
        ({"title": 3, "blocks": []}, "layout title must be a string"),
        ({"title": "x" * 201, "blocks": []}, "at most 200"),
        ({"blocks": {}}, "must be an array"),
        ({"blocks": [{"kind": "price_card"}] * (MAX_BLOCKS + 1)}, "at most"),
        (_with_block({"kind": "video"}), "unknown kind 'video'"),
        (_with_block({"text": "no kind"}), "unknown kind None"),
        (_with_block("price_card"), "JSON object"),
        (_with_block({"kind": "price_card", "extra": 1}), "unknown fields"),
        (_with_block({"kind": "text", "text": "x"}), "missing"),
        (_with_block({"kind": "text", "text": "x", "style": "huge"}), "style must be one of"),
        (_with_block({"kind": "text", "text": 5, "style": "note"}), "must be a string"),
        (_with_block({"kind": "text", "text": "", "style": "note"}), "must not be empty"),
        (_with_block({"kind": "text", "text": "x" * (MAX_TEXT + 1), "style": "note"}), "at most 10000"),
        (_with_block({"kind": "key_value", "rows": [["a"]]}), "pair"),
        (_with_block({"kind": "key_value", "rows": [["a", "b", "c"]]}), "at most 2"),
        (_with_block({"kind": "key_value", "rows": [["a", 1]]}), "value must be a string"),
        (_with_block({"kind": "key_value", "rows": "a=b"}), "must be an array"),
        (_with_block({"kind": "key_value", "rows": [["k", "v"]] * (MAX_ROWS + 1)}), "at most 100"),
        (_with_block({"kind": "chart", "points": [1, True]}), "point 1 must be a number, got bool"),
        (_with_block({"kind": "chart", "points": ["1"]}), "must be a number"),
        (_with_block({"kind": "chart", "points": [float("nan")]}), "finite"),
        (_with_block({"kind": "chart", "points": [float("inf")]}), "finite"),
        (_with_block({"kind": "chart", "points": [0] * (MAX_POINTS + 1)}), "at most 1000"),
        (_with_block({"kind": "chart", "points": [1, 2], "labels": ["a"]}), "must match"),
        (_with_block({"kind": "chart", "points": [1], "labels": [1]}), "label 0 must be a string"),
        (_with_block({"kind": "chart", "points": [1], "colour": "red"}), "unknown fields"),
    ],
)
def test_malformed_layouts_are_refused_with_a_reason(document: Any, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        Layout.from_dict(document)


def test_limits_are_inclusive() -> None:
    layout = Layout.from_dict(
        {
            "blocks": [
                {"kind": "text", "text": "x" * MAX_TEXT, "style": "paragraph"},
                {"kind": "key_value", "rows": [["k", "v"]] * MAX_ROWS},
                {"kind": "chart", "points": [0.5] * MAX_POINTS, "labels": [""] * MAX_POINTS},
            ]
            + [{"kind": "price_card"}] * (MAX_BLOCKS - 3)
        }
    )
    assert len(layout.blocks) == MAX_BLOCKS


def test_a_block_class_refuses_another_kind() -> None:
    with pytest.raises(MessageError, match="must have kind 'text'"):
        TextBlock.from_dict({"kind": "chart", "text": "x", "style": "note"})
    assert block_from_dict({"kind": "price_card"}) == PriceCardBlock()


def test_price_quote_round_trips_and_reports_percent() -> None:
    price = PriceQuote.from_dict(quote())
    assert PriceQuote.from_dict(json.loads(json.dumps(price.to_dict()))) == price
    assert price.change_24h_percent == "1.99"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"display_price": None}, "display_price"),
        ({"best_bid": 0.029}, "best_bid must be a decimal string"),
        ({"best_ask": "NaN"}, "finite"),
        ({"trade_count_24h": True}, "trade_count_24h"),
        ({"source": "guess"}, "source"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_malformed_price_quotes_are_refused(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        PriceQuote.from_dict(quote(**overrides))
