"""Chaos, small: 100 events streamed while browsers join, reload, lose polls, the master dies, a
queue is deleted and the whole stack restarts; every browser sends a foreign cookie before ours, and
the session id first lives an incarnation that expires and is created again. Nothing may be lost,
applied twice or out of order; all end in the same state.

The large run is ``pbfm-webpage bench --chaos`` (5,000 events); both use ``bench.chaos``.
"""

from __future__ import annotations

import pytest

from bench.chaos import ChaosPlan, coverage, run_chaos
from pbfm_tooling.local_stack import LocalStack

pytestmark = pytest.mark.slow


def test_coverage_counts_lost_duplicated_and_out_of_order() -> None:
    clean = coverage([("snapshot", 3), ("event", 4), ("event", 5)], final=5)
    assert (clean["lost"], clean["duplicated"], clean["out_of_order"]) == (0, 0, 0)
    bad = coverage([("event", 1), ("event", 3), ("event", 2), ("event", 3)], final=5)
    assert (bad["lost"], bad["duplicated"], bad["out_of_order"]) == (2, 1, 1)
    rejoined = coverage([("event", 1), ("join", 1), ("snapshot", 4), ("event", 5)], final=5)
    assert (rejoined["lost"], rejoined["snapshot_skipped"]) == (0, 3)
    # A re-created session id: the earlier incarnation's seqs neither count nor cover the new ones.
    recreated = coverage([("event", 1), ("event", 2), ("event", 3), ("incarnation", 0), ("event", 1),
                          ("event", 2)], final=3)
    assert (recreated["lost"], recreated["duplicated"], recreated["out_of_order"]) == (1, 0, 0)


def test_nothing_is_lost_duplicated_or_reordered_under_chaos(stack: LocalStack) -> None:
    assert stack.state is not None  # the run restarts it
    result = run_chaos(stack, ChaosPlan(events=100, rate=50.0, cuts=3))
    print("chaos:", {k: result[k] for k in ("events_published", "rate_achieved", "final_seq", "lost", "duplicated",
                                           "out_of_order", "identical_state", "equals_replay", "failover")})
    print("\n".join(result["timeline"]))
    summary = {k: result[k] for k in ("lost", "duplicated", "out_of_order", "final_seq", "failover", "errors",
                                      "differs_from_replay")}
    assert result["errors"] == [], summary
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0), result["browsers"]
    assert result["identical_state"] and result["equals_replay"], summary
    assert result["failover"].get("failover_s") is not None, summary
    # The failover waits for the timeout, then comes with the next heartbeats of live observers:
    # never before the deadline, and by the answer to the first observer heartbeat sent after it,
    # give or take the round trip of the one that took the failover's lease (measured on the wire, so
    # a slow machine's seconds-long heartbeats do not fail it).
    failover = result["failover"]
    assert failover["promoted_after_deadline_s"] >= 0, failover
    assert failover["late_by_s"] is not None, failover
    assert failover["late_by_s"] <= max(0.25, failover["slowest_round_trip_s"]), failover
    assert len(result["survivors"]) == 5 and result["ok"], summary
    # The chaos really happened: redelivered or overlapping copies were dropped, a queue was re-created.
    assert sum(b["processor"]["duplicates"] for b in result["browsers"].values()) > 0
    assert any(b["joins_again_at_seq"] for b in result["browsers"].values())
    # Straight from SQS, with presigned receives renewed during the run (they live 35 s here).
    loops = [b["loop"] for b in result["browsers"].values()]
    assert stack.settings.receive_url_lifetime_s == 35
    # (direct_polls counts cut receives too; polls only those answered)
    assert all(loop["direct_polls"] >= loop["polls"] > 0 for loop in loops), loops
    assert stack.requests["/api/webpage_poll_queue"] == 0
    assert all(loop["renewals"] > 0 for loop in loops), loops
    assert all(loop["inline_documents"] > 0 for loop in loops), loops
    timeline = "\n".join(result["timeline"])
    assert "stack restarted" in timeline and "created again" in timeline, timeline
    assert "dead master removed by the sweep" in timeline, timeline
    # Every tab followed the new incarnation, and the foreign cookie never cost one its identity in a
    # join loop: a handful of joins each (first, re-creation, restart, reload, deleted queue).
    assert all(b["loop"]["joins"] <= 12 for b in result["browsers"].values()), result["browsers"]
