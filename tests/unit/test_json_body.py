"""The shared body parser: size first, then depth, then json.loads; never a RecursionError."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalice_app.errors import InvalidInput, PayloadTooLarge
from chalice_app.json_body import MAX_DEPTH, BodyTooDeep, nesting_depth, parse_json_body


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (42, 0),
        ("[[[{{{", 0),
        ([], 1),
        ({"a": [1, {"b": [[]]}]}, 5),
        (["\\", ["]"]], 2),
        (['a\\"[[', [[["\\"]]]], 4),
        ({'"}': ['\\\\"', {"x": "]]]"}]}, 3),
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(value: Any, depth: int) -> None:
    raw = json.dumps(value).encode()
    assert nesting_depth(raw) == depth
    assert nesting_depth(json.dumps(value, ensure_ascii=False, indent=2).encode()) == depth


def test_an_unterminated_string_hides_what_follows() -> None:
    assert nesting_depth(b'["abc [[[[') == 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 2_000, 100_000])
def test_deep_bodies_are_refused_before_parsing(depth: int) -> None:
    raw = b"[" * depth + b"]" * depth
    with pytest.raises(BodyTooDeep, match=f"nested {depth} levels"):
        parse_json_body(raw, limit=len(raw))


def test_the_limit_itself_parses() -> None:
    raw = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json_body(raw, limit=1_000) == json.loads(raw)


def test_size_is_checked_first_in_bytes() -> None:
    with pytest.raises(PayloadTooLarge, match="8 bytes; the limit is 7 bytes"):
        parse_json_body('"ééé"', limit=7)
    assert parse_json_body('"ééé"', limit=8) == "ééé"


@pytest.mark.parametrize("raw", [b"", None, b"{nope", b"\xff\xfe\xfd", "\ud800", b'{"a": 1'])
def test_not_json_is_invalid_input(raw: Any) -> None:
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_json_body(raw, limit=100)


def test_the_scan_stays_fast_on_hostile_bodies() -> None:
    # Quote- and backslash-heavy bodies are where a regex-based scan would go quadratic.
    for raw in (b'"\\"' * 85_000, b'"' * 256_000, b"[" * 256_000, b"\\" * 256_000):
        started = time.perf_counter()
        nesting_depth(raw)
        assert time.perf_counter() - started < 0.5
