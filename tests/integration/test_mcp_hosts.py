"""What an assistant does, through every MCP client we can run here, against the real app over HTTP.

Each client creates a session, publishes a price, reads the page state back and finds the price it
just published; a wrong-typed argument comes back as an ``isError`` result; tool annotations are
there. Clients: the mcp Python SDK 2.x (2026-07-28 and handshake), 1.x (own venv), the TypeScript
SDK (npm), the MCP Inspector CLI 0.15 (Node 20) and 2.12 (Node 22, both eras), and mcp-remote —
the stdio bridge desktop apps use — with and without a bearer token.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from chalice_app.registry import registry
from pbfm_tooling.local_stack import LocalStack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
NODE22 = NODE_MODULES / "node" / "bin" / "node"
# By path: the aliased 2.x package installs a ".bin/mcp-inspector" of its own.
INSPECTOR_015 = NODE_MODULES / "@modelcontextprotocol" / "inspector" / "cli" / "build" / "cli.js"
INSPECTOR_2 = NODE_MODULES / "mcp-inspector-2" / "clients" / "launcher" / "build" / "index.js"
MCP_REMOTE = NODE_MODULES / "mcp-remote" / "dist" / "proxy.js"
TS_DRIVER = Path(__file__).with_name("mcp_ts") / "drive.mjs"
V1_PYTHON = ROOT / ".venv-mcp1" / "bin" / "python"
V1_DRIVER = Path(__file__).with_name("mcp_v1") / "drive.py"
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


def expected_hints() -> dict[str, dict[str, Any]]:
    return {op.name: {"title": op.title, **op.hints.to_mcp()} for op in registry.operations("mcp")}


def check_state(stack: LocalStack, session_id: str, state: dict[str, Any], published: str) -> None:
    """The page state a client read: the price it published, and the page's absolute URL."""
    assert state["session_id"] == session_id
    assert state["price"]["display_price"] == published
    assert state["recent_prices"][-1]["price"] == published
    assert state["page_url"] == stack.page_url(session_id)
    assert state["layout"]["blocks"] == [{"kind": "price_card"}]


def node_env(tmp_path: Path) -> dict[str, str]:
    # Node 22 first on PATH (Inspector 2.x, mcp-remote); HOME in tmp so no client writes to the real one.
    return {**os.environ, "PATH": f"{NODE22.parent}:{os.environ['PATH']}", "HOME": str(tmp_path),
            "MCP_CATALOG_PATH": str(tmp_path / "catalog.json")}


@pytest.fixture
def token(stack: LocalStack) -> Iterator[str]:
    original = stack.service.settings
    stack.service.settings = dataclasses.replace(original, mcp_token="host-token")
    try:
        yield "host-token"
    finally:
        stack.service.settings = original


# --- the mcp Python SDK 2.x ---------------------------------------------------------------------


async def python_assistant(client: Client, session_id: str) -> dict[str, Any]:
    tools = (await client.list_tools()).tools
    await client.call_tool("webpage_create_session", {"session_id": session_id})
    price = await client.call_tool("webpage_update_hash_price_display", {"session_id": session_id})
    state = await client.call_tool("webpage_get_page_state", {"session_id": session_id})
    wrong = await client.call_tool("webpage_get_page_state", {"session_id": ["not", "a", "string"]})
    return {
        "version": client.protocol_version,
        "instructions": client.instructions if hasattr(client, "instructions") else None,
        "annotations": {t.name: {"title": t.title, **(t.annotations.model_dump(by_alias=True, exclude_none=True)
                                                      if t.annotations else {})} for t in tools},
        "published": (price.structured_content or {})["price"]["display_price"],
        "state": state.structured_content,
        "state_text": state.content[0].text,  # type: ignore[union-attr]
        "wrong": (wrong.is_error, wrong.content[0].text),  # type: ignore[union-attr]
    }


@pytest.mark.parametrize(("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
def test_python_sdk_2x_drives_a_page_and_reads_it_back(stack: LocalStack, session_id: str, mode: str,
                                                         version: str) -> None:
    async def scenario() -> dict[str, Any]:
        async with Client(stack.mcp_url, mode=mode) as client:  # type: ignore[arg-type]
            return await python_assistant(client, session_id)

    seen = anyio.run(scenario)
    assert seen["version"] == version
    check_state(stack, session_id, seen["state"], seen["published"])
    assert seen["state_text"].startswith(f"Page {session_id!r} at {stack.page_url(session_id)}")
    assert f"HASH-USD {seen['published']} USD" in seen["state_text"]
    assert seen["wrong"][0] is True and "- session_id: Input should be a valid string" in seen["wrong"][1]
    expected = expected_hints()
    assert {name: {k: v for k, v in hints.items() if k in ("title", *HINTS)}
            for name, hints in seen["annotations"].items()} == expected


def test_python_sdk_2x_reads_resources_and_prompts(stack: LocalStack, session_id: str) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with Client(stack.mcp_url) as client:
            await client.call_tool("webpage_create_session", {"session_id": session_id, "title": "Resources"})
            templates = await client.list_resource_templates()
            listed = await client.list_resources()
            read = await client.read_resource(f"pbfm://sessions/{session_id}/state")
            prompts = await client.list_prompts()
            prompt = await client.get_prompt("start_live_hash_page", {"audience": "my team"})
            return templates, listed, read, prompts, prompt

    templates, listed, read, prompts, prompt = anyio.run(scenario)
    assert [t.uri_template for t in templates.resource_templates] == ["pbfm://sessions/{session_id}/state"]
    assert f"pbfm://sessions/{session_id}/state" in [r.uri for r in listed.resources]
    document = json.loads(read.contents[0].text)
    assert (document["session_id"], document["title"], document["price"]) == (session_id, "Resources", None)
    assert {p.name for p in prompts.prompts} == {"start_live_hash_page", "describe_page"}
    assert "for my team" in prompt.messages[0].content.text


# --- the mcp Python SDK 1.x ---------------------------------------------------------------------


def test_python_sdk_1x_drives_a_page_and_reads_it_back(stack: LocalStack, session_id: str) -> None:
    assert V1_PYTHON.exists(), "./dev.sh creates .venv-mcp1 with mcp 1.x"
    done = subprocess.run([str(V1_PYTHON), str(V1_DRIVER), stack.mcp_url, session_id],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    check_state(stack, session_id, seen["state"], seen["published"])
    assert seen["wrong_is_error"] is True and "- session_id: Input should be a valid string" in seen["wrong_text"]
    assert seen["annotations"] == expected_hints()
    assert seen["server_title"] == "pb-fm live webpage" and "webpage_create_session" in seen["instructions"]


# --- the TypeScript SDK -------------------------------------------------------------------------


@pytest.mark.parametrize("with_token", [False, True])
def test_typescript_sdk_drives_a_page_and_reads_it_back(stack: LocalStack, session_id: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest, with_token: bool) -> None:
    assert NODE22.exists() and (NODE_MODULES / "@modelcontextprotocol" / "sdk").exists(), "run `npm ci`"
    secret = [request.getfixturevalue("token")] if with_token else []
    done = subprocess.run([str(NODE22), str(TS_DRIVER), stack.mcp_url, session_id, *secret],
                          capture_output=True, text=True, timeout=120, check=False, env=node_env(tmp_path),
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["protocol"] == "2025-11-25"
    assert seen["server"] == {"name": "pb-fm-webpage", "title": "pb-fm live webpage",
                              "version": seen["server"]["version"]}
    assert "webpage_get_page_state" in seen["instructions"]
    # "extensions": MCP Apps (the session view inside the chat), which this client ignores unharmed.
    assert set(seen["capabilities"]) == {"tools", "resources", "prompts", "completions", "logging", "extensions"}
    assert seen["created"]["page_url"] == stack.page_url(session_id)
    check_state(stack, session_id, seen["state"], seen["published_price"])
    assert seen["wrong_is_error"] is True and "- session_id: Input should be a valid string" in seen["wrong_text"]
    assert seen["annotations"] == expected_hints()
    assert seen["templates"] == ["pbfm://sessions/{session_id}/state"]
    assert seen["resource"]["price"]["display_price"] == seen["published_price"]
    assert "start_live_hash_page" in seen["prompts"]


# --- the MCP Inspector CLI ----------------------------------------------------------------------


def inspector_015(url: str, *args: str) -> Any:
    done = subprocess.run([str(INSPECTOR_015), "--cli", url, "--transport", "http", *args],
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def test_inspector_015_drives_a_page_and_reads_it_back(stack: LocalStack, session_id: str) -> None:
    assert INSPECTOR_015.exists(), "npm ci installs the MCP Inspector CLI 0.15"
    tools = inspector_015(stack.mcp_url, "--method", "tools/list")["tools"]
    assert {t["name"]: {"title": t["title"], **{k: t["annotations"][k] for k in HINTS}} for t in tools} \
        == expected_hints()
    inspector_015(stack.mcp_url, "--method", "tools/call", "--tool-name", "webpage_create_session",
                  "--tool-arg", f"session_id={session_id}")
    price = inspector_015(stack.mcp_url, "--method", "tools/call", "--tool-name",
                          "webpage_update_hash_price_display", "--tool-arg", f"session_id={session_id}")
    state = inspector_015(stack.mcp_url, "--method", "tools/call", "--tool-name", "webpage_get_page_state",
                          "--tool-arg", f"session_id={session_id}")
    check_state(stack, session_id, state["structuredContent"], price["structuredContent"]["price"]["display_price"])
    # Inspector 0.15 converts --tool-arg by the schema's type: "many" for an integer becomes null.
    wrong = inspector_015(stack.mcp_url, "--method", "tools/call", "--tool-name", "webpage_list_sessions",
                          "--tool-arg", "limit=many")
    assert wrong["isError"] is True and "- limit: Input should be a valid integer" in wrong["content"][0]["text"]


def inspector_2(tmp_path: Path, url: str, era: str, *args: str, exit_code: int = 0) -> Any:
    done = subprocess.run([str(NODE22), str(INSPECTOR_2), "--cli", url, "--protocol-era", era, "--format", "json",
                           "-q", *args], capture_output=True, text=True, timeout=90, check=False,
                          env=node_env(tmp_path))
    assert done.returncode == exit_code, done.stderr + done.stdout
    return json.loads(done.stdout)["result"]


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_inspector_2_drives_a_page_and_reads_it_back(stack: LocalStack, session_id: str, tmp_path: Path,
                                                     era: str) -> None:
    assert NODE22.exists() and INSPECTOR_2.exists(), "npm ci installs node@22 and the Inspector 2.12"
    # --strict: the Inspector's own tool-schema portability check fails the run on any error.
    tools = inspector_2(tmp_path, stack.mcp_url, era, "--method", "tools/list", "--strict")["tools"]
    assert {t["name"]: {"title": t["title"], **{k: t["annotations"][k] for k in HINTS}} for t in tools} \
        == expected_hints()

    def call(name: str, arguments: dict[str, Any], exit_code: int = 0) -> Any:
        return inspector_2(tmp_path, stack.mcp_url, era, "--method", "tools/call", "--tool-name", name,
                           "--tool-args-json", json.dumps(arguments), exit_code=exit_code)

    created = call("webpage_create_session", {"session_id": session_id})
    # Only 2026-07-28 results carry the server's identity in _meta: proof of the era spoken. Both
    # carry the chat view's grant there.
    assert ("io.modelcontextprotocol/serverInfo" in created["_meta"]) is (era == "modern")
    assert created["_meta"]["pb-fm-webpage/view"]["session_id"] == session_id
    price = call("webpage_update_hash_price_display", {"session_id": session_id})
    state = call("webpage_get_page_state", {"session_id": session_id})
    check_state(stack, session_id, state["structuredContent"], price["structuredContent"]["price"]["display_price"])
    if era == "legacy":
        # What follows does not depend on the era, and the 2025-11-25 protocol's errors, resources and
        # prompts are the TypeScript SDK's and mcp-remote's tests too (each Inspector run is a Node).
        return
    wrong = call("webpage_get_page_state", {"session_id": 7}, exit_code=5)  # 5: the tool answered isError
    assert wrong["isError"] is True and "- session_id: Input should be a valid string" in wrong["content"][0]["text"]
    read = inspector_2(tmp_path, stack.mcp_url, era, "--method", "resources/read", "--uri",
                       f"pbfm://sessions/{session_id}/state")
    assert json.loads(read["contents"][0]["text"])["last_seq"] == state["structuredContent"]["last_seq"]
    prompts = inspector_2(tmp_path, stack.mcp_url, era, "--method", "prompts/list")["prompts"]
    assert "start_live_hash_page" in [p["name"] for p in prompts]


# --- mcp-remote: the stdio bridge of desktop apps (Claude Desktop) ------------------------------


def remote_assistant(stack: LocalStack, session_id: str, tmp_path: Path, token: str | None) -> dict[str, Any]:
    """Claude Desktop's way: spawn `npx mcp-remote <url> [--header ...]` and speak stdio to it."""
    args = [str(MCP_REMOTE), stack.mcp_url]
    env = node_env(tmp_path)
    if token is not None:
        # The README's header syntax: no space after the colon (Windows and some hosts split on spaces).
        args += ["--header", "Authorization:${PBFM_AUTH}"]
        env["PBFM_AUTH"] = f"Bearer {token}"
    params = StdioServerParameters(command=str(NODE22), args=args, env=env, cwd=str(ROOT))

    async def scenario() -> dict[str, Any]:
        async with Client(stdio_client(params)) as client:
            return await python_assistant(client, session_id)

    return anyio.run(scenario)


@pytest.mark.parametrize("with_token", [False, True])
def test_mcp_remote_bridges_a_desktop_host(stack: LocalStack, session_id: str, tmp_path: Path,
                                           request: pytest.FixtureRequest, with_token: bool) -> None:
    assert NODE22.exists() and MCP_REMOTE.exists(), "npm ci installs mcp-remote"
    token = request.getfixturevalue("token") if with_token else None
    seen = remote_assistant(stack, session_id, tmp_path, token)
    check_state(stack, session_id, seen["state"], seen["published"])
    assert seen["wrong"][0] is True
    assert {name: {k: v for k, v in hints.items() if k in ("title", *HINTS)}
            for name, hints in seen["annotations"].items()} == expected_hints()


def test_the_token_is_required_through_the_sdk_when_configured(stack: LocalStack, session_id: str,
                                                                token: str) -> None:
    async def scenario() -> dict[str, Any]:
        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
            Client(streamable_http_client(stack.mcp_url, http_client=http)) as client,
        ):
            return await python_assistant(client, session_id)

    seen = anyio.run(scenario)
    check_state(stack, session_id, seen["state"], seen["published"])
