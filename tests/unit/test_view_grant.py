"""The grant a tool result hands the chat view, and the participant label it earns (pure web_py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from web_py.page_state import PageState, Participant
from web_py.render import View, render_page
from web_py.view_grant import GRANT_META, GrantError, ViewGrant

GRANT = ViewGrant("room-1", "https://pages.example/session/room-1", "https://pages.example/api", "v1.t", 900)


def result(meta: Any = None, **extra: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": "done"}], "structuredContent": {}, "isError": False,
            **({"_meta": meta} if meta is not None else {}), **extra}


def test_the_grant_round_trips_through_a_tool_result() -> None:
    assert ViewGrant.from_tool_result(result(GRANT.to_meta())) == GRANT


@pytest.mark.parametrize(("meta", "problem"), [
    (None, "does not name a live page"),
    ({GRANT_META: "x"}, "does not name a live page"),
    ({GRANT_META: {**GRANT.to_meta()[GRANT_META], "session_id": "../x"}}, "no valid session"),
    ({GRANT_META: {**GRANT.to_meta()[GRANT_META], "token": ""}}, "no valid session"),
    ({GRANT_META: {**GRANT.to_meta()[GRANT_META], "api_base": "/api"}}, "own address"),
    ({GRANT_META: {**GRANT.to_meta()[GRANT_META], "page_url": "javascript:alert(1)"}}, "own address"),
    ({GRANT_META: {**GRANT.to_meta()[GRANT_META], "expires_in_s": True}}, "lifetime"),
])
def test_a_result_without_a_usable_grant_says_why(meta: Any, problem: str) -> None:
    with pytest.raises(GrantError, match=problem):
        ViewGrant.from_tool_result(result(meta))


def test_a_failed_tool_call_is_reported_with_its_text() -> None:
    failed = {"content": [{"type": "text", "text": "No session 'x'."}], "isError": True}
    with pytest.raises(GrantError, match=re.escape("The tool call failed: No session 'x'.")):
        ViewGrant.from_tool_result(failed)


def test_the_view_is_labelled_in_chat_for_everyone() -> None:
    people = (Participant("aaaaaaaaaaaa", "master", 1.0), Participant("bbbbbbbbbbbb", "observer", 2.0, in_chat=True))
    state = PageState(master_client_id="aaaaaaaaaaaa", participants=people)
    assert PageState.from_dict(state.to_dict()) == state
    assert "in_chat" not in state.to_dict()["participants"][0]
    html = render_page(state, View(client_id="aaaaaaaaaaaa"))
    assert 'data-client-id="bbbbbbbbbbbb" data-role="observer" data-in-chat>' in html
    assert "bbbbbbbbbbbb · observer · in chat" in html
    with pytest.raises(Exception, match="in_chat must be a boolean"):
        Participant.from_dict({"client_id": "bbbbbbbbbbbb", "role": "observer", "joined_at": 1, "in_chat": "yes"})
