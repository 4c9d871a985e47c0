"""Every MCP tool's schemas compile under Ajv's strict mode, and accept and refuse what they should.

Most TypeScript MCP hosts validate tool arguments with Ajv; in strict mode it refuses keywords
that are not JSON Schema (pydantic's ``discriminator``) and some hosts' schema subsets refuse
``prefixItems``. The schemas come from the real ``tools/list`` of the app; the examples below must
cover every tool, so a new tool cannot arrive without them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalice_app.application import create_app
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import memory_service

ROOT = Path(__file__).resolve().parents[3]
NODE_CHECK = Path(__file__).with_name("ajv_strict.mjs")
SID, CID = "team", "abcdefghijkl"
TEXT_BLOCK = {"kind": "text", "text": "Hello", "style": "paragraph"}
LAYOUT = {"title": "Update", "blocks": [TEXT_BLOCK, {"kind": "price_card"}]}

# tool -> (valid arguments, invalid arguments)
EXAMPLES: dict[str, tuple[list[dict[str, Any]], list[Any]]] = {
    "webpage_create_session": ([{}, {"session_id": SID, "title": "Team"}],
                               [{"session_id": "bad id!"}, {"session_id": SID, "extra": 1}, []]),
    "webpage_get_session_status": ([{"session_id": SID}], [{}, {"session_id": 7}]),
    "webpage_create_browser_queues": ([{"session_id": SID, "client_id": CID}],
                                      [{"session_id": SID, "client_id": "ABC"}]),
    "webpage_get_session_participants": ([{"session_id": SID}], [{"session_id": ""}]),
    "webpage_transfer_control_to_observer": ([{"session_id": SID, "client_id": CID}], [{"session_id": SID}]),
    "webpage_end_session": ([{"session_id": SID}, {"session_id": SID, "reason": "done"}],
                            [{"session_id": SID, "reason": "x" * 1000}]),
    "webpage_update_hash_price_display": ([{"session_id": SID}, {"session_id": SID, "source": "simulated"}],
                                          [{"session_id": SID, "source": "nasdaq"}]),
    "webpage_send_to_browsers": ([{"session_id": SID, "content": LAYOUT}],
                                 [{"session_id": SID, "content": {"blocks": [{"kind": "video"}]}},
                                  {"session_id": SID}]),
    "webpage_store_layout_data": ([{"session_id": SID, "content": LAYOUT}],
                                  [{"session_id": SID, "content": {"blocks": "none"}}]),
    "webpage_store_price_data": ([{"session_id": SID}], [{"session_id": SID, "source": 3}]),
    "webpage_generate_s3_key": ([{"session_id": SID, "kind": "layout"}], [{"session_id": SID, "kind": "video"}]),
    "webpage_get_page_state": ([{"session_id": SID}], [{}, {"session_id": ["team"]}]),
    "webpage_list_sessions": ([{}, {"limit": 1}, {"limit": 100}], [{"limit": 0}, {"limit": 101}, {"limit": "5"}]),
    "webpage_get_hash_price": ([{}, {"source": "figure_markets"}], [{"source": "nyse"}, {"session_id": SID}]),
    "webpage_show_stored_layout": ([{"session_id": SID, "s3_key": f"layouts/{SID}/1764620000000-ab12cd34.json"}],
                                   [{"session_id": SID}, {"session_id": SID, "s3_key": "../etc/passwd"},
                                    {"session_id": SID, "s3_key": f"sessions/{SID}/prices/x.json"}]),
}


@pytest.fixture(scope="module")
def tools() -> list[dict[str, Any]]:
    # An app of its own over explicit settings: the module-level app would read whatever PBFM_*
    # environment earlier tests' stacks left (a token, say).
    service = memory_service(Settings())
    with Client(create_app(lambda: service)) as client:
        answer = client.http.post("/mcp", headers={"Content-Type": "application/json",
                                                   "Accept": "application/json, text/event-stream"},
                                  body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
    assert answer.status_code == 200, answer.body
    listed: list[dict[str, Any]] = json.loads(answer.body)["result"]["tools"]
    return listed


def strict_check(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    result = subprocess.run(["node", str(NODE_CHECK)], input=json.dumps(cases), capture_output=True, text=True,
                            cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return {line["name"]: line for line in map(json.loads, result.stdout.splitlines())}


def test_every_tool_has_examples(tools: list[dict[str, Any]]) -> None:
    assert {t["name"] for t in tools} == set(EXAMPLES)


def test_input_schemas_compile_strictly_and_judge_the_examples(tools: list[dict[str, Any]]) -> None:
    cases = [{"name": t["name"], "schema": t["inputSchema"], "valid": EXAMPLES[t["name"]][0],
              "invalid": EXAMPLES[t["name"]][1]} for t in tools if t["name"] in EXAMPLES]
    checked = strict_check(cases)
    refused = {name: r["error"] for name, r in checked.items() if not r["compiled"]}
    assert refused == {}
    for name, report in checked.items():
        assert all(ok is True for ok in report["valid_ok"]), (name, report["valid_ok"])
        assert all(report["invalid_ok"]), (name, report["invalid_ok"])


def test_output_schemas_compile_strictly(tools: list[dict[str, Any]]) -> None:
    cases = [{"name": t["name"], "schema": t["outputSchema"], "valid": [], "invalid": []}
             for t in tools if "outputSchema" in t]
    assert cases
    refused = {name: r["error"] for name, r in strict_check(cases).items() if not r["compiled"]}
    assert refused == {}


def test_no_keyword_outside_portable_json_schema(tools: list[dict[str, Any]]) -> None:
    def keywords(node: Any, named: bool = False) -> set[str]:
        # Under "properties"/"$defs" the keys are names, not keywords.
        if isinstance(node, dict):
            found = set() if named else set(node)
            for key, value in node.items():
                found |= keywords(value, named=not named and key in {"properties", "$defs", "patternProperties"})
            return found
        if isinstance(node, list):
            return {k for v in node for k in keywords(v)}
        return set()

    for tool in tools:
        for key in ("inputSchema", "outputSchema"):
            assert not keywords(tool.get(key, {})) & {"discriminator", "prefixItems"}, (tool["name"], key)


def _properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, schema) under a "properties" anywhere in the schema, $defs included."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, value in (node.get("properties") or {}).items():
            found.append((f"{where}.{name}", value))
        for key, value in node.items():
            if key == "properties":
                for name, child in value.items():
                    found.extend(_properties(child, f"{where}.{name}"))
            elif isinstance(value, (dict, list)):
                found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.extend(_properties(item, f"{where}[{i}]"))
    return found


def _described(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    if schema.get("description"):
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return bool(defs.get(ref.removeprefix("#/$defs/"), {}).get("description"))
    return False


def test_every_property_is_described_and_times_name_their_unit(tools: list[dict[str, Any]]) -> None:
    undescribed: list[str] = []
    unitless: list[str] = []
    for tool in tools:
        for key in ("inputSchema", "outputSchema"):
            schema = tool[key]
            defs = schema.get("$defs", {})
            for path, prop in _properties(schema):
                where = f"{tool['name']} {key}{path}"
                if not _described(prop, defs):
                    undescribed.append(where)
                name = path.rsplit(".", 1)[-1]
                if (name.endswith("_at") or "time" in name) and "epoch seconds" not in prop.get("description", ""):
                    unitless.append(where)
    assert undescribed == []
    assert unitless == []
