"""Late joiner: join sent → the state at join time applied, against the length of the history.

History is seeded with the server's own snapshots every ``snapshot_every`` events; a join folds
any tail of ``snapshot_every`` or more into a fresh snapshot, so a joiner reads one snapshot plus
fewer than ``snapshot_every`` events whatever the history's length. Each size also checks that
snapshot + tail gives exactly the state a full replay of the log gives.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import last_seq, new_session, reference_state, seed_history
from bench.stats import summary
from pbfm_tooling.headless_browser import HeadlessBrowser
from pbfm_tooling.local_stack import LocalStack


def measure(stack: LocalStack, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        session_id = new_session(stack, "late")
        seeded_at = time.perf_counter()
        seed_history(stack, session_id, size)
        seed_s = time.perf_counter() - seeded_at
        samples: list[float] = []
        tails: list[int] = []
        joins: list[float] = []
        same_as_replay = True
        for n in range(repeats):
            browser = HeadlessBrowser(stack.base_url, session_id)
            try:
                started = time.perf_counter()
                joined = browser.join()
                joins.append(time.perf_counter() - started)
                browser.catch_up(joined["last_seq"], timeout_s=60)
                samples.append(time.perf_counter() - started)
                tails.append(len(browser.applied))
                if n == 0:
                    same_as_replay = _matches(stack, session_id, browser)
            finally:
                browser.close()
        rows.append({"history": size, "seed_s": round(seed_s, 2), "events_applied_by_joiner": tails,
                     "snapshot_plus_tail_equals_full_replay": same_as_replay, "join_to_caught_up": summary(samples),
                     "join_request": summary(joins),
                     "last_seq": last_seq(stack, session_id)})
    return rows


def _matches(stack: LocalStack, session_id: str, browser: HeadlessBrowser) -> bool:
    # The joiner may still be behind events published after its join (its own PARTICIPANTS).
    browser.catch_up(last_seq(stack, session_id), timeout_s=60)
    return browser.state == reference_state(stack, session_id)
