"""The JSON schemas derived from the content vocabulary: portable, described, and faithful.

Portable: strict validators (Ajv strict mode, several MCP hosts) refuse pydantic's ``discriminator``
keyword and tuple ``prefixItems``; no schema the server publishes (MCP tools, REST, OpenAPI)
contains either (tests/integration/schemas compiles the tool schemas with Ajv itself).
Described: every property of the content carries a description. Faithful: the advertised input
schema gives the page's verdict on the chosen inputs of the parity test, apart from the few rules
JSON Schema cannot state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from chalice_app.openapi import openapi_document
from chalice_app.registry import registry
from tests.functional.test_content_parity import CASES, page
from web_py.content import ChartBlock, KeyValueBlock, KeyValueRow, Layout, PriceCardBlock, PriceQuote, TextBlock

CONTENT_DEFS = {cls.__name__ for cls in (Layout, PriceCardBlock, TextBlock, KeyValueRow, KeyValueBlock, ChartBlock,
                                         PriceQuote)}


def all_schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    for op in registry.operations():
        yield f"{op.name} input", op.input_schema()
        yield f"{op.name} output", op.output_schema()
    yield "openapi", openapi_document(registry)


def keys_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            # Under "properties" the keys are field names, not keywords.
            yield from (k for child in (value.values() if key == "properties" else [value]) for k in keys_in(child))
    elif isinstance(node, list):
        for item in node:
            yield from keys_in(item)


@pytest.mark.parametrize(("name", "schema"), list(all_schemas()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_schema_uses_keywords_strict_hosts_refuse(name: str, schema: dict[str, Any]) -> None:
    assert not {"discriminator", "prefixItems"} & set(keys_in(schema)), name


def send_schema() -> dict[str, Any]:
    op = registry.get("webpage_send_to_browsers", "mcp")
    assert op is not None
    return op.input_schema()


def test_every_content_property_is_described() -> None:
    defs = send_schema()["$defs"]
    price = registry.get("webpage_update_hash_price_display", "mcp")
    assert price is not None
    defs = {**defs, **price.output_schema()["$defs"]}
    assert set(defs) >= CONTENT_DEFS
    for name in CONTENT_DEFS:
        assert defs[name].get("description"), name
        assert defs[name]["additionalProperties"] is False, name
        for prop, schema in defs[name]["properties"].items():
            assert schema.get("description"), f"{name}.{prop} has no description"


def test_block_union_is_a_plain_one_of_told_apart_by_a_const_kind() -> None:
    schema = send_schema()
    items = schema["$defs"]["Layout"]["properties"]["blocks"]["items"]
    members = [ref["$ref"].rsplit("/", 1)[1] for ref in items["oneOf"]]
    assert members == ["PriceCardBlock", "TextBlock", "KeyValueBlock", "ChartBlock"]
    kinds = [schema["$defs"][m]["properties"]["kind"]["const"] for m in members]
    assert kinds == ["price_card", "text", "key_value", "chart"]


def test_limits_in_the_schema_are_the_vocabulary_limits() -> None:
    defs = send_schema()["$defs"]
    assert defs["KeyValueRow"]["properties"]["key"]["maxLength"] == 200
    assert defs["KeyValueRow"]["properties"]["value"]["maxLength"] == 10_000
    assert defs["Layout"]["properties"]["blocks"]["maxItems"] == 50
    assert defs["KeyValueBlock"]["properties"]["rows"]["maxItems"] == 100
    assert defs["ChartBlock"]["properties"]["points"]["maxItems"] == 1000
    assert defs["TextBlock"]["properties"]["style"]["default"] == "paragraph"


# What JSON Schema cannot say, and so only the server's validation and the page's parser enforce.
BEYOND_JSON_SCHEMA = {
    "labels do not match points": "a rule across two fields",
    "NaN point": "JSON has no NaN; a validator sees a float",
    "infinite point": "JSON has no Infinity",
    "-infinite point": "JSON has no Infinity",
    "integer beyond the float range": "JSON numbers are unbounded",
    "lone surrogate in text": "a schema cannot refuse a code point",
    "too large for a message": "the transport limit, not the vocabulary",
}


@pytest.mark.parametrize(("name", "content"), [(name, content) for name, content, _ in CASES])
def test_the_advertised_schema_gives_the_pages_verdict(name: str, content: Any) -> None:
    schema = send_schema()
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors({"session_id": "demo", "content": content}))
    schema_verdict = "refused" if errors else "accepted"
    if name in BEYOND_JSON_SCHEMA:
        assert schema_verdict == "accepted", "the schema now states this rule; drop it from BEYOND_JSON_SCHEMA"
        return
    assert schema_verdict == page(content), [e.message for e in errors][:3]
