"""The assistant's reading tools and reusable layouts, through the real app in-process on the stack's moto.

A page state read over MCP must be exactly what a browser folds from the session's log (the page's
own reducer); reading a quote or the state publishes nothing; a stored layout is shown again by key.
"""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from pbfm_tooling.local_stack import LocalStack
from web_py import page_state
from web_py.content import Layout
from web_py.messages import BY_REFERENCE, Envelope, MessageType

LAYOUT = {"title": "Desk", "blocks": [{"kind": "text", "text": "Morning  view", "style": "heading"},
                                      {"kind": "key_value", "rows": [{"key": "Desk", "value": "HASH"}]},
                                      {"kind": "chart", "points": [1, 2.5, 3]}, {"kind": "price_card"}]}



def tool(client: Client, name: str, arguments: dict[str, Any], host: str = "pages.test") -> dict[str, Any]:
    response = client.http.post("/mcp", headers={"Content-Type": "application/json", "Host": host}, body=json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}))
    assert response.status_code == 200, response.body
    result: dict[str, Any] = json.loads(response.body)["result"]
    return result


def folded_by_a_browser(stack: LocalStack, session_id: str) -> dict[str, Any]:
    """What a page that joined at seq 0 shows: every event of the log through the page's reducer."""
    state = page_state.PageState()
    for event in stack.service.store.events_after(session_id, 0):
        envelope = Envelope(session_id, event.seq, MessageType(event.type), event.ts, s3_key=event.s3_key,
                            payload=event.payload)
        document = stack.service.blobs.get_json(event.s3_key) if envelope.type in BY_REFERENCE else None
        state = page_state.apply(state, envelope, document)
    return state.to_dict()


def test_page_state_is_what_every_browser_shows(client: Client, stack: LocalStack, session_id: str) -> None:
    created = tool(client, "webpage_create_session", {"session_id": session_id, "title": "Desk"})
    assert created["structuredContent"]["page_url"] == f"http://pages.test/session/{session_id}"
    first = tool(client, "webpage_update_hash_price_display", {"session_id": session_id})
    tool(client, "webpage_send_to_browsers", {"session_id": session_id, "content": LAYOUT})
    second = tool(client, "webpage_update_hash_price_display", {"session_id": session_id})

    seq_before = stack.service.store.require_session(session_id).seq
    read = tool(client, "webpage_get_page_state", {"session_id": session_id})
    assert stack.service.store.require_session(session_id).seq == seq_before  # reading publishes nothing
    view = read["structuredContent"]
    browser = folded_by_a_browser(stack, session_id)
    assert view["last_seq"] == browser["last_seq"] == seq_before
    assert view["price"] == browser["price"] == second["structuredContent"]["price"]
    # The same layout (the JSON result spells out the defaults the stored document leaves out).
    assert Layout.from_dict(view["layout"]) == Layout.from_dict(browser["layout"])
    assert [p["price"] for p in view["recent_prices"]] == [
        first["structuredContent"]["price"]["display_price"], second["structuredContent"]["price"]["display_price"]]
    text = read["content"][0]["text"]
    url = f"http://pages.test/session/{session_id}"
    assert text.splitlines()[0] == f"Page 'Desk' at {url} (active, event {seq_before})."
    assert f"HASH-USD {view['price']['display_price']} USD" in text
    assert "heading: Morning view" in text and "table with 1 row(s): Desk = HASH" in text
    assert "chart of 3 point(s), from 1 to 3" in text
    assert json.loads(read["content"][1]["text"]) == view


def test_a_snapshot_plus_tail_reads_the_same_as_the_whole_log(client: Client, stack: LocalStack,
                                                             session_id: str) -> None:
    tool(client, "webpage_create_session", {"session_id": session_id})
    for _ in range(stack.service.settings.snapshot_every + 3):  # past one snapshot
        tool(client, "webpage_update_hash_price_display", {"session_id": session_id})
    session = stack.service.store.require_session(session_id)
    assert 0 < session.snapshot_seq < session.seq
    view = tool(client, "webpage_get_page_state", {"session_id": session_id})["structuredContent"]
    browser = folded_by_a_browser(stack, session_id)
    assert (view["last_seq"], view["price"]) == (browser["last_seq"], browser["price"])
    assert [[p["seq"], p["price"]] for p in view["recent_prices"]] == browser["price_history"][-20:]


def test_a_quote_is_read_without_showing_it(client: Client, stack: LocalStack, session_id: str) -> None:
    tool(client, "webpage_create_session", {"session_id": session_id})
    seq = stack.service.store.require_session(session_id).seq
    quote = tool(client, "webpage_get_hash_price", {"source": "simulated"})
    assert quote["isError"] is False and quote["structuredContent"]["price"]["symbol"] == "HASH-USD"
    assert stack.service.store.require_session(session_id).seq == seq


def test_stored_layouts_are_shown_again_by_key(client: Client, stack: LocalStack, session_id: str) -> None:
    tool(client, "webpage_create_session", {"session_id": session_id})
    stored = tool(client, "webpage_store_layout_data", {"session_id": session_id, "content": LAYOUT})
    key = stored["structuredContent"]["s3_key"]
    tool(client, "webpage_send_to_browsers", {"session_id": session_id, "content": {
        "blocks": [{"kind": "text", "text": "Something else"}]}})
    shown = tool(client, "webpage_show_stored_layout", {"session_id": session_id, "s3_key": key})
    assert shown["structuredContent"]["s3_key"] == key
    view = tool(client, "webpage_get_page_state", {"session_id": session_id})["structuredContent"]
    assert view["layout"]["title"] == "Desk" and len(view["layout"]["blocks"]) == 4


def test_foreign_or_missing_layout_keys_are_error_results_and_change_nothing(
        client: Client, stack: LocalStack, session_id: str) -> None:
    tool(client, "webpage_create_session", {"session_id": session_id})
    other = tool(client, "webpage_create_session", {"session_id": session_id + "o"})["structuredContent"]
    foreign = tool(client, "webpage_store_layout_data", {"session_id": other["session_id"], "content": LAYOUT})
    seq = stack.service.store.require_session(session_id).seq
    for key in (foreign["structuredContent"]["s3_key"], f"layouts/{session_id}/0000000000000-00000000.json"):
        refused = tool(client, "webpage_show_stored_layout", {"session_id": session_id, "s3_key": key})
        assert refused["isError"] is True, refused
    assert stack.service.store.require_session(session_id).seq == seq


def test_sessions_are_listed_newest_first_with_links(client: Client, stack: LocalStack, session_id: str) -> None:
    for suffix in ("a", "b"):
        tool(client, "webpage_create_session", {"session_id": session_id + suffix})
    listed = tool(client, "webpage_list_sessions", {"limit": 100})["structuredContent"]
    ours = [s for s in listed["sessions"] if s["session_id"].startswith(session_id)]
    assert [s["session_id"] for s in ours] == [session_id + "b", session_id + "a"]
    assert ours[0]["page_url"] == f"http://pages.test/session/{session_id}b"
    assert len(tool(client, "webpage_list_sessions", {"limit": 1})["structuredContent"]["sessions"]) == 1
