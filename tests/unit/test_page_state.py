from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from web_py.content import DEFAULT_LAYOUT, Layout, PriceQuote, TextBlock
from web_py.messages import Envelope, MessageError, MessageType, end_of_history
from web_py.page_state import (
    PRICE_HISTORY_LIMIT,
    PageState,
    Participant,
    SequenceError,
    apply,
    role_of,
)

SID = "demo"
ALICE = "aaaaaaaaaaa1"
BOB = "bbbbbbbbbbb2"
CAROL = "ccccccccccc3"


def quote(price: str) -> dict[str, Any]:
    names = (
        "mid_market_price", "last_traded_price", "best_bid", "best_ask", "index_price", "change_24h",
        "change_24h_fraction", "volume_24h", "high_24h", "low_24h", "trade_count_24h",
    )
    data: dict[str, Any] = dict.fromkeys(names)
    data.update(symbol="HASH-USD", display_price=price, mid_market_price=price, source="simulated",
                fetched_at=1_700_000_000.25)
    return data


def price_event(seq: int) -> Envelope:
    return Envelope(SID, seq, MessageType.PRICE_UPDATE, 1.0, s3_key=f"sessions/{SID}/prices/{seq}.json")


def layout_event(seq: int) -> Envelope:
    return Envelope(SID, seq, MessageType.LAYOUT_UPDATE, 1.0, s3_key=f"layouts/{SID}/{seq}.json")


def inline(seq: int, kind: MessageType, payload: dict[str, Any]) -> Envelope:
    return Envelope(SID, seq, kind, 1.0, payload=payload)


def participants(seq: int, master: str | None, *people: tuple[str, str]) -> Envelope:
    listed = [{"client_id": c, "role": r, "joined_at": 100.0 + i} for i, (c, r) in enumerate(people)]
    return inline(seq, MessageType.PARTICIPANTS, {"master_client_id": master, "participants": listed})


def role_change(seq: int, master: str, previous: str | None, reason: str = "failover") -> Envelope:
    payload = {"master_client_id": master, "previous_master_client_id": previous, "reason": reason}
    return inline(seq, MessageType.ROLE_CHANGE, payload)


LAYOUT = {"title": "Today", "blocks": [{"kind": "text", "text": "Hello", "style": "heading"},
                                       {"kind": "price_card"}]}


def busy_state() -> PageState:
    state = PageState()
    state = apply(state, participants(1, ALICE, (ALICE, "master"), (BOB, "observer")))
    state = apply(state, price_event(2), quote("0.030"))
    state = apply(state, layout_event(3), LAYOUT)
    state = apply(state, price_event(4), quote("0.031"))
    return state


def test_initial_state_shows_the_default_layout() -> None:
    state = PageState()
    assert (state.last_seq, state.price, state.layout, state.ended) == (0, None, DEFAULT_LAYOUT, False)


def test_events_build_up_the_state() -> None:
    state = busy_state()
    assert state.last_seq == 4
    assert state.price is not None and state.price.display_price == "0.031"
    assert state.price_history == ((2, "0.030"), (4, "0.031"))
    assert state.layout.title == "Today"
    assert state.layout.blocks[0] == TextBlock(text="Hello", style="heading")
    assert state.master_client_id == ALICE
    assert [p.client_id for p in state.participants] == [ALICE, BOB]


def test_apply_does_not_mutate_the_old_state() -> None:
    before = busy_state()
    copy = PageState.from_dict(before.to_dict())
    apply(before, price_event(5), quote("9"))
    assert before == copy


def test_role_change_moves_the_master_and_keeps_participants_consistent() -> None:
    state = apply(busy_state(), role_change(5, BOB, ALICE))
    assert state.master_client_id == BOB
    assert {p.client_id: p.role for p in state.participants} == {ALICE: "observer", BOB: "master"}
    assert role_of(state, BOB) == "master"
    assert role_of(state, ALICE) == "observer"
    assert role_of(state, CAROL) is None


def test_session_ended() -> None:
    ended = inline(5, MessageType.SESSION_ENDED, {"reason": "closed by the AI", "archive_key": None})
    state = apply(busy_state(), ended)
    assert state.ended and state.end_reason == "closed by the AI"
    assert state.last_seq == 5


def test_price_history_keeps_the_last_points_only() -> None:
    state = PageState()
    total = PRICE_HISTORY_LIMIT + 25
    for seq in range(1, total + 1):
        state = apply(state, price_event(seq), quote(f"0.{seq:04d}"))
    assert len(state.price_history) == PRICE_HISTORY_LIMIT
    assert state.price_history[0] == (26, "0.0026")
    assert state.price_history[-1] == (total, f"0.{total:04d}")
    assert PageState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_snapshot_round_trips_exactly_through_json() -> None:
    state = apply(busy_state(), inline(5, MessageType.SESSION_ENDED, {"reason": "done", "archive_key": "a"}))
    document = json.loads(json.dumps(state.to_dict()))
    assert PageState.from_dict(document) == state
    assert PageState.from_dict(document).to_dict() == document


def test_snapshot_message_replaces_the_state() -> None:
    target = busy_state()
    snapshot = Envelope(SID, 4, MessageType.SNAPSHOT, 1.0, s3_key="sessions/demo/snapshots/0000000004.json")
    stale = apply(PageState(), price_event(1), quote("1"))
    assert apply(stale, snapshot, target.to_dict()) == target


def test_snapshot_document_must_match_the_message_seq() -> None:
    snapshot = Envelope(SID, 9, MessageType.SNAPSHOT, 1.0, s3_key="k")
    with pytest.raises(MessageError, match="seq 4"):
        apply(PageState(), snapshot, busy_state().to_dict())


@pytest.mark.parametrize("seq", [4, 6, 1])
def test_events_must_follow_last_seq(seq: int) -> None:
    with pytest.raises(SequenceError, match=f"seq {seq} does not follow last_seq 4"):
        apply(busy_state(), price_event(seq), quote("1"))


def test_end_of_history_is_not_applied() -> None:
    with pytest.raises(MessageError, match="marker"):
        apply(PageState(), end_of_history(SID, 0, 1.0))


@pytest.mark.parametrize(
    ("envelope", "document", "reason"),
    [
        (price_event(1), None, "needs the document"),
        (price_event(1), {"display_price": "1"}, "price quote is missing"),
        (layout_event(1), {"blocks": [{"kind": "video"}]}, "unknown kind"),
        (participants(1, ALICE, (ALICE, "master")), {"x": 1}, "inline"),
        (inline(1, MessageType.PARTICIPANTS, {"participants": []}), None, "missing"),
        (participants(1, "Not-An-Id", (ALICE, "master")), None, "not a valid client id"),
        (participants(1, ALICE, (ALICE, "boss")), None, "role must be one of"),
        (participants(1, ALICE, (ALICE, "master"), (ALICE, "observer")), None, "twice"),
        (role_change(1, ALICE, None, reason="coup"), None, "reason must be one of"),
        (inline(1, MessageType.ROLE_CHANGE, {"master_client_id": ALICE}), None, "missing"),
        (inline(1, MessageType.SESSION_ENDED, {"reason": 5, "archive_key": None}), None, "reason"),
        (inline(1, MessageType.SESSION_ENDED, {"reason": "x"}), None, "missing"),
    ],
)
def test_malformed_events_are_refused(envelope: Envelope, document: Any, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        apply(PageState(), envelope, document)


def _snapshot(**changes: Any) -> dict[str, Any]:
    data = busy_state().to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "JSON object"),
        (_snapshot(v=2), "version"),
        (_snapshot(extra=1), "unknown fields"),
        (_snapshot(last_seq=-1), "last_seq"),
        (_snapshot(last_seq=True), "last_seq"),
        (_snapshot(price_history=[[2, "0.03"], [2, "0.04"]]), "increasing"),
        (_snapshot(price_history=[[9, "0.03"]]), "bad seq"),
        (_snapshot(price_history=[[2, 0.03]]), "decimal string"),
        (_snapshot(price_history=[[2]]), r"\[seq, price\]"),
        (_snapshot(price_history=[[1, "1"]] * (PRICE_HISTORY_LIMIT + 1)), "at most"),
        (_snapshot(ended="no"), "ended"),
        (_snapshot(end_reason="why"), "not ended"),
        (_snapshot(layout={"blocks": 1}), "array"),
        (_snapshot(participants=[{"client_id": ALICE, "role": "master"}]), "missing"),
    ],
)
def test_malformed_snapshots_are_refused(document: Any, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        PageState.from_dict(document)


def test_state_can_be_built_directly() -> None:
    price = PriceQuote.from_dict(quote("0.5"))
    state = PageState(
        last_seq=3,
        price=price,
        price_history=[[3, "0.5"]],  # type: ignore[arg-type]
        layout=Layout.from_dict(LAYOUT),
        master_client_id=ALICE,
        participants=[Participant(ALICE, "master", 1.0)],  # type: ignore[arg-type]
    )
    assert state.price_history == ((3, "0.5"),)
    assert state == replace(state)
    assert PageState.from_dict(state.to_dict()) == state
