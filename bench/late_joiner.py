"""Late joiner: join sent → the state at join time applied, against the length of the history.

The joiner is a page tab running the shipped ``SessionManager`` (its ``connect``, then its loop);
the time it reached the join's ``last_seq`` comes from the loop's ``on_apply`` hook. History is
seeded with the server's own snapshots every ``snapshot_every`` events; a join folds any tail of
``snapshot_every`` or more into a fresh snapshot, so a joiner reads one snapshot plus fewer than
``snapshot_every`` events whatever the history's length. Each size also checks that snapshot +
tail gives exactly the state a full replay of the log gives.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import last_seq, new_session, reference_state, seed_history
from bench.stats import summary
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner, Tab
from web_py.messages import Envelope


class _Reached:
    """The moment the tab first applied something at or past ``target`` (a snapshot or an event)."""

    def __init__(self) -> None:
        self.target: int | None = None
        self.at: float | None = None

    def __call__(self, envelope: Envelope, source: str) -> None:
        if self.at is None and self.target is not None and envelope.seq >= self.target:
            self.at = time.perf_counter()


def measure(stack: LocalStack, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    with PageRunner(stack.base_url) as pages:
        for size in sizes:
            rows.append(_measure_size(stack, pages, size, repeats))
    return rows


def _measure_size(stack: LocalStack, pages: PageRunner, size: int, repeats: int) -> dict[str, Any]:
    session_id = new_session(stack, "late")
    seeded_at = time.perf_counter()
    seed_history(stack, session_id, size)
    seed_s = time.perf_counter() - seeded_at
    samples: list[float] = []
    tails: list[int] = []
    joins: list[float] = []
    same_as_replay = True
    for n in range(repeats):
        reached = _Reached()
        tab = pages.open(session_id, on_apply=reached)
        try:
            started = time.perf_counter()
            joined = tab.join()
            joins.append(time.perf_counter() - started)
            reached.target = joined.last_seq
            tab.catch_up(joined.last_seq, timeout_s=60)
            assert reached.at is not None, "caught up without an apply at the join's last_seq"
            samples.append(reached.at - started)
            tails.append(sum(1 for seq in tab.applied if seq <= joined.last_seq))
            if n == 0:
                same_as_replay = _matches(stack, session_id, tab)
        finally:
            tab.close()
    return {"history": size, "seed_s": round(seed_s, 2), "events_applied_by_joiner": tails,
            "snapshot_plus_tail_equals_full_replay": same_as_replay, "join_to_caught_up": summary(samples),
            "join_request": summary(joins), "last_seq": last_seq(stack, session_id)}


def _matches(stack: LocalStack, session_id: str, tab: Tab) -> bool:
    # Events may still follow the join (its own PARTICIPANTS list, coalesced): compare a state the
    # tab showed with the replay of a log that ends at the same sequence.
    for _ in range(10):
        tab.catch_up(last_seq(stack, session_id), timeout_s=60)
        shown = tab.state
        reference = reference_state(stack, session_id)
        if shown.last_seq == reference.last_seq:
            return shown == reference
    raise AssertionError(f"the log of {session_id} kept growing while the late joiner was compared")
