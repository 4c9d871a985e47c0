from __future__ import annotations

import asyncio
import functools
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.scripted_server import ScriptedServer
from web_py.messages import Envelope, MessageType, end_of_history
from web_py.page_state import PageState, apply
from web_py.queue_processor import (
    Apply,
    Drop,
    DualQueueProcessor,
    Gap,
    HistoryComplete,
    ProcessorStateError,
)
from web_py.session_manager import MemoryStore, SessionManager

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


@functools.cache
def replay(upto: int) -> PageState:
    """The state after events 1..upto (PageState is immutable, so one copy serves every test)."""
    state = PageState() if upto == 0 else replay(upto - 1)
    if upto:
        envelope, doc = _event(upto)
        state = apply(state, envelope, doc)
    return state


def snapshot(seq: int) -> Envelope:
    return Envelope(SID, seq, MessageType.SNAPSHOT, 1.0, s3_key=f"sessions/{SID}/snapshots/{seq:010d}.json")


def eoh(seq: int) -> Envelope:
    return end_of_history(SID, seq, 1.0)


# --- the shipped page loop over a scripted server ------------------------------------------------

MAX_TURNS = 20_000  # turns of the event loop before a scenario counts as stuck


def snapshot_document(seq: int) -> dict[str, Any]:
    return replay(seq).to_dict()


@dataclass
class PageRun:
    """What ``SessionManager`` (the page's own loop) did against a ``ScriptedServer``."""

    manager: SessionManager
    server: ScriptedServer
    snapshots: list[int] = field(default_factory=list)

    @property
    def applied(self) -> list[int]:
        return self.manager.applied_seqs

    @property
    def processor(self) -> DualQueueProcessor:
        return self.manager.processor


def saved_at(seq: int) -> MemoryStore:
    """A sessionStorage holding the page state at ``seq``, written by the page's own ``save``."""
    store = MemoryStore()
    if seq:
        page = SessionManager(SID, ScriptedServer(SID, _event, 0, history=[], live=[],
                                                  snapshot_document=snapshot_document), store=store)
        page.state = replay(seq)
        page.save()
    return store


def run_page(server_last_seq: int, history: list[Any], live: list[Any], *, reloaded_at: int = 0,
             **server_options: Any) -> PageRun:
    """Run the page's loop (``run()``: polls, heartbeats, repairs) until it has settled, then stop it."""
    server = ScriptedServer(SID, _event, server_last_seq, history=history, live=live,
                            snapshot_document=snapshot_document, **server_options)
    snapshots: list[int] = []

    def on_apply(envelope: Envelope, source: str) -> None:
        if envelope.type is MessageType.SNAPSHOT:
            snapshots.append(envelope.seq)

    now = [0.0]  # virtual time: every sleep passes at once, and the page's clock moves by it

    async def no_wait(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    manager = SessionManager(SID, server, store=saved_at(reloaded_at), on_apply=on_apply, sleep=no_wait,
                             clock=lambda: now[0], jitter=lambda: 0.5)
    assert manager.state.last_seq == reloaded_at

    def settled() -> bool:
        return (server.drained and manager.processor.phase == "live" and manager.state.last_seq >= server_last_seq
                and Counter(server.deleted) == Counter(server.delivered))

    async def scenario() -> None:
        task = asyncio.ensure_future(manager.run())
        for _ in range(MAX_TURNS):
            await asyncio.sleep(0)
            if settled() or task.done():
                break
        manager.stop()
        await task

    asyncio.run(scenario())
    return PageRun(manager, server, snapshots)


# --- scenarios ------------------------------------------------------------------------------------


def test_history_then_live_with_overlap() -> None:
    page = run_page(8, [ev(s) for s in range(1, 6)] + [eoh(5)], [ev(s) for s in range(3, 9)])
    assert page.applied == list(range(1, 9))
    assert page.manager.state == replay(8)
    assert sorted(page.server.deleted) == sorted(page.server.delivered)
    assert len(page.server.delivered) == 12
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


def test_a_short_repair_leaves_an_open_gap_that_is_repaired_again() -> None:
    page = run_page(10, [eoh(0)], [ev(10)], repair_cap=2)
    assert page.applied == list(range(1, 11))
    assert page.processor.stats.gaps == 1
    assert page.manager.metrics.repairs == 5  # 1-2, 3-4, 5-6, 7-8, 9; then the held 10
    assert page.manager.metrics.applied_from_live == 1


def test_gap_inside_history_is_repaired_too() -> None:
    page = run_page(6, [ev(1), ev(2), ev(4), ev(5), eoh(5)], [ev(6)])
    assert page.applied == [1, 2, 3, 4, 5, 6]
    assert page.processor.stats.repaired >= 1


def test_snapshot_plus_tail_equals_full_replay() -> None:
    page = run_page(23, [snapshot(17), *map(ev, range(18, 21)), eoh(20)], [ev(s) for s in range(19, 24)])
    assert page.snapshots == [17]
    assert page.applied == list(range(18, 24))
    assert page.manager.state == replay(23)
    assert page.processor.stats.snapshots == 1


def test_reload_resume_drops_what_the_page_already_has() -> None:
    page = run_page(12, [snapshot(7), ev(9), eoh(9)], [ev(10)], reloaded_at=9)
    # The older snapshot and event 9 are dropped (acknowledged, never fetched); 11 and 12 come
    # from the log once the status shows the page is behind.
    assert page.snapshots == []
    assert page.applied == [10, 11, 12]
    assert page.manager.state == replay(12)
    assert page.processor.stats.duplicates == 2
    assert page.manager.metrics.documents_fetched <= 3
    assert sorted(page.server.deleted) == sorted(page.server.delivered)


def test_a_newer_snapshot_jumps_ahead_of_a_reloaded_page() -> None:
    page = run_page(30, [snapshot(25), eoh(25)], [ev(26)], reloaded_at=9)
    assert page.snapshots == [25]
    assert page.applied == [26, 27, 28, 29, 30]
    assert page.manager.state == replay(30)


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


def test_a_lost_tail_is_caught_up_from_the_status_in_short_repairs() -> None:
    # No message reveals 1..9: only the session status (asked every few heartbeats) does.
    page = run_page(9, [eoh(0)], [], repair_cap=2)
    assert page.applied == list(range(1, 10))
    assert page.server.requests["webpage_get_session_status"] >= 1
    assert page.manager.metrics.applied_from_repair == 9


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


MALFORMED = {"v": 1, "nonsense": True}


@dataclass(frozen=True)
class Scenario:
    n: int  # the server's last seq
    h: int  # END_OF_HISTORY's seq
    k: int  # the history's snapshot (0: none)
    reloaded_at: int  # the state the page saved before a reload (0: a fresh page)
    repair_cap: int  # the most events one get_events returns
    twice_end: bool  # END_OF_HISTORY delivered twice
    malformed: bool  # a malformed message on the live queue
    direct: bool  # the page long-polls "SQS" with presigned receives (some refused) instead of the server
    seed: int  # the queues' mess: losses, duplicates, swaps, batch sizes, expired URLs


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    # The shape is drawn by Hypothesis (so a failure shrinks to a small log); the mess from a seed.
    n = draw(st.integers(1, 40))
    h = draw(st.integers(0, n))
    return Scenario(n=n, h=h, k=draw(st.one_of(st.just(0), st.integers(0, h))),
                    reloaded_at=draw(st.one_of(st.just(0), st.integers(0, n))),
                    repair_cap=draw(st.sampled_from([1, 3, 500])), twice_end=draw(st.booleans()),
                    malformed=draw(st.booleans()), direct=draw(st.booleans()),
                    seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_random_interleavings_apply_each_event_once_in_order(scenario: Scenario) -> None:
    """The page's own loop, whatever the queues do: lost, duplicated, swapped and malformed messages,
    a snapshot, END_OF_HISTORY twice, a reload, batches of any size, short repairs, expired URLs;
    polling through the server or straight from SQS (with refused presigned receives)."""
    rng = random.Random(scenario.seed)
    n, h, k, reloaded_at = scenario.n, scenario.h, scenario.k, scenario.reloaded_at
    history: list[Any] = [snapshot(k)] if k else []
    history += _mess_up(rng, [ev(s) for s in range(k + 1, h + 1)], lose=0.1)
    history += [eoh(h), eoh(h)] if scenario.twice_end else [eoh(h)]
    live: list[Any] = _mess_up(rng, [ev(s) for s in range(rng.randint(1, h + 1), n + 1)], lose=0.15)
    if scenario.malformed:
        live.insert(rng.randint(0, len(live)), MALFORMED)
    expired = frozenset(s for s in range(1, n + 1) if rng.random() < 0.1)

    page = run_page(n, history, live, reloaded_at=reloaded_at, repair_cap=scenario.repair_cap,
                    batch=lambda: rng.randint(1, 10), expired=expired, direct=scenario.direct,
                    refuse=lambda: rng.random() < 0.1)

    start = max(page.snapshots, default=reloaded_at)
    assert page.snapshots in ([], [k])
    assert page.applied == list(range(start + 1, n + 1))
    assert page.manager.state == replay(n)
    assert page.processor.last_applied == n
    assert page.processor.pending() == ()
    assert page.processor.open_gap() is None
    assert page.manager.metrics.malformed == page.server.malformed_delivered
    # Every message received was acked exactly once, none twice, none leaked.
    assert Counter(page.server.deleted) == Counter(page.server.delivered)
    # The direct path really was direct: no poll went through the server, refusals were renewed.
    if scenario.direct:
        assert page.server.requests["webpage_poll_queue"] == 0 and page.server.requests["SQS"] > 0
        assert page.manager.metrics.refused_receives == page.server.refused
