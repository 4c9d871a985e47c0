from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from web_py.messages import Envelope, MessageType, end_of_history
from web_py.page_state import PageState, apply
from web_py.queue_processor import (
    Apply,
    Decision,
    Drop,
    DualQueueProcessor,
    Gap,
    HistoryComplete,
    ProcessorStateError,
)

SID = "bench-1"
CLIENTS = ("aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3")


# --- a deterministic event log, as the server would hold it ---------------------------------------


def _quote(seq: int) -> dict[str, Any]:
    names = (
        "mid_market_price", "last_traded_price", "best_bid", "best_ask", "index_price", "change_24h",
        "change_24h_fraction", "volume_24h", "high_24h", "low_24h", "trade_count_24h",
    )
    data: dict[str, Any] = dict.fromkeys(names)
    data.update(symbol="HASH-USD", display_price=f"0.{seq:05d}", source="simulated", fetched_at=float(seq))
    return data


def _event(seq: int) -> tuple[Envelope, Any]:
    """Event ``seq`` of the log and its S3 document (None for inline events)."""
    master = CLIENTS[seq % 3]
    match seq % 5:
        case 0:
            key = f"layouts/{SID}/{seq}.json"
            doc = {"title": f"v{seq}", "blocks": [{"kind": "chart", "points": [seq, seq / 2]}]}
            return Envelope(SID, seq, MessageType.LAYOUT_UPDATE, 1.0, s3_key=key), doc
        case 1:
            people = [{"client_id": c, "role": "master" if c == master else "observer", "joined_at": 1.0}
                      for c in CLIENTS]
            payload = {"master_client_id": master, "participants": people}
            return Envelope(SID, seq, MessageType.PARTICIPANTS, 1.0, payload=payload), None
        case 2:
            payload = {"master_client_id": master, "previous_master_client_id": None, "reason": "transfer"}
            return Envelope(SID, seq, MessageType.ROLE_CHANGE, 1.0, payload=payload), None
        case _:
            key = f"sessions/{SID}/prices/{seq}.json"
            return Envelope(SID, seq, MessageType.PRICE_UPDATE, 1.0, s3_key=key), _quote(seq)


def ev(seq: int) -> Envelope:
    return _event(seq)[0]


def replay(upto: int) -> PageState:
    state = PageState()
    for seq in range(1, upto + 1):
        envelope, doc = _event(seq)
        state = apply(state, envelope, doc)
    return state


def snapshot(seq: int) -> Envelope:
    return Envelope(SID, seq, MessageType.SNAPSHOT, 1.0, s3_key=f"sessions/{SID}/snapshots/{seq:010d}.json")


def eoh(seq: int) -> Envelope:
    return end_of_history(SID, seq, 1.0)


# --- a caller that does what SessionManager does, minus the network -------------------------------


@dataclass
class Page:
    """Plays the I/O caller: applies, acks, repairs from the log (``repair_limit`` events a call)."""

    server_last_seq: int
    last_applied: int = 0
    repair_limit: int = 500
    drain_between_repairs: bool = True
    processor: DualQueueProcessor = field(init=False)
    state: PageState = field(init=False)
    applied: list[int] = field(default_factory=list)
    snapshots: list[int] = field(default_factory=list)
    acked: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.processor = DualQueueProcessor(self.last_applied, session_id=SID)
        self.state = replay(self.last_applied)

    def feed(self, source: Any, envelope: Envelope, token: Any = None) -> Decision:
        decision = self.processor.offer(source, envelope, token)
        self.handle(decision)
        self.settle()
        return decision

    def handle(self, decision: Decision) -> None:
        match decision:
            case Apply(envelope=envelope, token=token):
                if envelope.type is MessageType.SNAPSHOT:
                    self.state = apply(self.state, envelope, replay(envelope.seq).to_dict())
                    self.snapshots.append(envelope.seq)
                else:
                    self.state = apply(self.state, envelope, _event(envelope.seq)[1])
                    self.applied.append(envelope.seq)
                self.processor.applied(envelope)
                self._ack(token)
            case Drop(token=token) | HistoryComplete(token=token):
                self._ack(token)
            case Gap(after_seq=after):
                upto = min(after + self.repair_limit, self.server_last_seq)
                for seq in range(after + 1, upto + 1):
                    self.handle(self.processor.offer("repair", ev(seq)))
                    if self.drain_between_repairs:
                        self.drain()

    def drain(self) -> None:
        while (ready := self.processor.next_ready()) is not None:
            self.handle(ready)

    def settle(self) -> None:
        self.drain()
        while (gap := self.processor.open_gap()) is not None:
            self.handle(gap)
            self.drain()

    def catch_up(self) -> None:
        gap = self.processor.behind(self.server_last_seq)
        if gap is not None:
            self.handle(gap)
            self.settle()

    def _ack(self, token: Any) -> None:
        if token is not None:
            self.acked.append(token)


def deliver(page: Page, history: list[Envelope], live: list[Envelope]) -> list[Any]:
    """Drain history until END_OF_HISTORY, then live; returns the tokens handed out."""
    tokens: list[Any] = []
    for i, envelope in enumerate(history):
        if page.processor.queue_to_poll() != "history":
            break
        tokens.append(("h", i))
        page.feed("history", envelope, ("h", i))
    assert page.processor.queue_to_poll() == "live"
    for i, envelope in enumerate(live):
        tokens.append(("l", i))
        page.feed("live", envelope, ("l", i))
    page.catch_up()
    return tokens


# --- scenarios ------------------------------------------------------------------------------------


def test_history_then_live_with_overlap() -> None:
    page = Page(server_last_seq=8)
    tokens = deliver(page, [ev(s) for s in range(1, 6)] + [eoh(5)], [ev(s) for s in range(3, 9)])
    assert page.applied == list(range(1, 9))
    assert page.state == replay(8)
    assert sorted(page.acked) == sorted(tokens)
    stats = page.processor.stats
    assert (stats.applied, stats.duplicates, stats.gaps, stats.repaired) == (8, 3, 0, 0)


def test_duplicates_are_dropped_and_acked() -> None:
    processor = DualQueueProcessor()
    assert processor.offer("history", ev(1), "a") == Apply(ev(1), "history", "a")
    processor.applied(ev(1))
    decision = processor.offer("history", ev(1), "b")
    assert decision == Drop("duplicate", "seq 1 is at or below last applied 1", 1, "b")
    assert processor.offer("history", eoh(1), "c") == HistoryComplete(1, "c")
    assert isinstance(processor.offer("history", eoh(1), "d"), Drop)
    assert isinstance(processor.offer("live", ev(1), "e"), Drop)
    assert processor.stats.duplicates == 3


def test_out_of_order_live_is_held_until_its_predecessor_arrives() -> None:
    processor = DualQueueProcessor(4, session_id=SID)
    processor.offer("history", eoh(4))
    assert processor.offer("live", ev(6), "t6") == Gap(after_seq=4, before_seq=6)
    assert processor.pending() == (6,)
    assert processor.next_ready() is None
    assert processor.offer("live", ev(5), "t5") == Apply(ev(5), "live", "t5")
    assert processor.next_ready() is None  # nothing before applied()
    processor.applied(ev(5))
    assert processor.next_ready() == Apply(ev(6), "live", "t6")
    processor.applied(ev(6))
    assert processor.next_ready() is None
    assert (processor.last_applied, processor.pending()) == (6, ())


def test_gap_repaired_via_repair_offers() -> None:
    processor = DualQueueProcessor(session_id=SID)
    processor.offer("history", eoh(0))
    assert processor.offer("live", ev(4), "t4") == Gap(0, 4)
    for seq in (1, 2, 3):
        decision = processor.offer("repair", ev(seq))
        assert decision == Apply(ev(seq), "repair", None)
        processor.applied(ev(seq))
    assert processor.offer("repair", ev(4)) == Apply(ev(4), "repair", None)
    processor.applied(ev(4))
    # The held live copy of 4 is now only to be acked.
    ready = processor.next_ready()
    assert isinstance(ready, Drop) and (ready.seq, ready.token) == (4, "t4")
    assert processor.offer("live", ev(5), "t5") == Apply(ev(5), "live", "t5")
    stats = processor.stats
    assert (stats.gaps, stats.repaired, stats.applied) == (1, 4, 4)


def test_a_short_repair_leaves_an_open_gap() -> None:
    page = Page(server_last_seq=10, repair_limit=2)
    deliver(page, [eoh(0)], [ev(10)])
    assert page.applied == list(range(1, 11))
    assert page.processor.stats.gaps == 1


def test_gap_inside_history_is_repaired_too() -> None:
    page = Page(server_last_seq=6)
    deliver(page, [ev(1), ev(2), ev(4), ev(5), eoh(5)], [ev(6)])
    assert page.applied == [1, 2, 3, 4, 5, 6]
    assert page.processor.stats.repaired >= 1


def test_snapshot_plus_tail_equals_full_replay() -> None:
    page = Page(server_last_seq=23)
    deliver(page, [snapshot(17), *map(ev, range(18, 21)), eoh(20)], [ev(s) for s in range(19, 24)])
    assert page.snapshots == [17]
    assert page.applied == list(range(18, 24))
    assert page.state == replay(23)
    assert page.processor.stats.snapshots == 1


def test_reload_resume_drops_what_the_page_already_has() -> None:
    page = Page(server_last_seq=12, last_applied=9)
    assert page.feed("history", snapshot(7), "s") == Drop(
        "stale_snapshot", "snapshot at seq 7, page already at 9", 7, "s"
    )
    assert isinstance(page.feed("history", ev(9), "e9"), Drop)
    page.feed("history", eoh(9), "end")
    page.feed("live", ev(10), "l10")
    page.catch_up()
    assert page.applied == [10, 11, 12]
    assert page.state == replay(12)


def test_a_newer_snapshot_jumps_ahead_of_a_reloaded_page() -> None:
    page = Page(server_last_seq=30, last_applied=9)
    deliver(page, [snapshot(25), eoh(25)], [ev(26)])
    assert page.snapshots == [25]
    assert page.applied == [26, 27, 28, 29, 30]
    assert page.state == replay(30)


def test_end_of_history_below_last_applied_completes_at_once() -> None:
    processor = DualQueueProcessor(10, session_id=SID)
    assert processor.offer("history", eoh(3), "x") == HistoryComplete(3, "x")
    assert processor.phase == "live"


def test_end_of_history_above_last_applied_waits_for_a_repair() -> None:
    processor = DualQueueProcessor(2, session_id=SID)
    assert processor.offer("history", eoh(4), "x") == Gap(2, 5)
    assert processor.queue_to_poll() == "history"
    assert processor.open_gap() == Gap(2, 5)
    for seq in (3, 4):
        assert isinstance(processor.offer("repair", ev(seq)), Apply)
        assert processor.next_ready() is None
        processor.applied(ev(seq))
    assert processor.next_ready() == HistoryComplete(4, "x")
    assert processor.queue_to_poll() == "live"
    assert processor.open_gap() is None


def test_a_redelivered_held_message_keeps_the_newest_token() -> None:
    processor = DualQueueProcessor(session_id=SID)
    processor.offer("history", eoh(0))
    assert isinstance(processor.offer("live", ev(3), "old"), Gap)
    dropped = processor.offer("live", ev(3), "new")
    assert isinstance(dropped, Drop) and dropped.token == "old"
    for seq in (1, 2):
        processor.offer("repair", ev(seq))
        processor.applied(ev(seq))
    assert processor.next_ready() == Apply(ev(3), "live", "new")


def test_offering_a_fresh_copy_before_draining_acks_the_held_one() -> None:
    processor = DualQueueProcessor(session_id=SID)
    processor.offer("history", eoh(0))
    processor.offer("live", ev(2), "held")
    processor.offer("repair", ev(1))
    processor.applied(ev(1))
    assert processor.offer("repair", ev(2)) == Apply(ev(2), "repair", None)
    processor.applied(ev(2))
    ready = processor.next_ready()
    assert isinstance(ready, Drop) and ready.token == "held"
    assert processor.next_ready() is None


def test_behind_reports_a_lost_last_message_until_caught_up() -> None:
    processor = DualQueueProcessor(5, session_id=SID)
    assert processor.behind(5) is None
    assert processor.behind(7) == Gap(5, 8)
    processor.offer("repair", ev(6))
    processor.applied(ev(6))
    assert processor.open_gap() == Gap(6, 8)
    processor.offer("repair", ev(7))
    processor.applied(ev(7))
    assert processor.open_gap() is None
    assert processor.behind(3) is None


def test_a_short_catch_up_keeps_going() -> None:
    page = Page(server_last_seq=9, repair_limit=2)
    deliver(page, [eoh(0)], [])
    assert page.applied == list(range(1, 10))


# --- malformed input and protocol misuse ----------------------------------------------------------


def test_other_sessions_and_misplaced_control_messages_are_rejected() -> None:
    processor = DualQueueProcessor(session_id=SID)
    foreign = Envelope("other", 1, MessageType.PRICE_UPDATE, 1.0, s3_key="k")
    decision = processor.offer("live", foreign, "f")
    assert isinstance(decision, Drop) and (decision.kind, decision.token) == ("foreign_session", "f")
    misplaced = processor.offer("live", snapshot(3), "s")
    assert isinstance(misplaced, Drop) and misplaced.kind == "misplaced"
    assert isinstance(processor.offer("repair", eoh(3)), Drop)
    assert processor.stats.rejected == 3
    assert (processor.last_applied, processor.phase) == (0, "history")


def test_session_is_fixed_by_the_first_message_when_not_given() -> None:
    processor = DualQueueProcessor()
    processor.offer("history", ev(1))
    processor.applied(ev(1))
    assert processor.session_id == SID
    foreign = Envelope("other", 2, MessageType.PRICE_UPDATE, 1.0, s3_key="k")
    assert isinstance(processor.offer("history", foreign), Drop)


def test_protocol_misuse_raises() -> None:
    processor = DualQueueProcessor(session_id=SID)
    with pytest.raises(ValueError, match="source"):
        processor.offer("queue", ev(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Envelope"):
        processor.offer("live", ev(1).to_dict())  # type: ignore[arg-type]
    with pytest.raises(ProcessorStateError):
        processor.applied(ev(1))
    processor.offer("history", ev(1))
    with pytest.raises(ProcessorStateError, match="still being applied"):
        processor.offer("history", ev(2))
    with pytest.raises(ProcessorStateError):
        processor.applied(ev(2))
    processor.abandon(ev(1))
    assert processor.last_applied == 0
    assert isinstance(processor.offer("history", ev(1)), Apply)
    for bad in (-1, True, "3"):
        with pytest.raises(ValueError):
            DualQueueProcessor(bad)  # type: ignore[arg-type]


# --- property: any interleaving converges to exactly-once, in-order ----------------------------


def _mess_up(rng: random.Random, messages: list[Envelope], *, lose: float) -> list[Envelope]:
    out = [m for m in messages if rng.random() >= lose]
    for _ in range(rng.randint(0, 4)):
        if out:
            i = rng.randrange(len(out))
            out.insert(rng.randint(i, len(out)), out[i])
    for _ in range(rng.randint(0, 4)):
        if len(out) >= 2:
            i = rng.randrange(len(out) - 1)
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


@pytest.mark.parametrize("seed", range(400))
def test_random_interleavings_apply_each_event_once_in_order(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    reloaded_at = rng.choice([0, 0, rng.randint(0, n)])
    h = rng.randint(0, n)
    k = rng.randint(0, h) if rng.random() < 0.4 else 0
    history = ([snapshot(k)] if k else []) + _mess_up(rng, [ev(s) for s in range(k + 1, h + 1)], lose=0.1)
    history.append(eoh(h))
    if rng.random() < 0.2:
        history.append(eoh(h))
    live = _mess_up(rng, [ev(s) for s in range(rng.randint(1, h + 1), n + 1)], lose=0.15)

    page = Page(
        server_last_seq=n,
        last_applied=reloaded_at,
        repair_limit=rng.choice([1, 3, 500]),
        drain_between_repairs=rng.random() < 0.5,
    )
    tokens = deliver(page, history, live)

    start = max(page.snapshots, default=reloaded_at)
    assert page.snapshots in ([], [k])
    assert page.applied == list(range(start + 1, n + 1))
    assert page.state == replay(n)
    assert page.processor.last_applied == n
    assert page.processor.pending() == ()
    assert page.processor.open_gap() is None
    # Every message received was acked exactly once, none twice, none leaked.
    assert Counter(page.acked) == Counter(tokens)
