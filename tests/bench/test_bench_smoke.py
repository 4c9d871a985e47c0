"""The bench harness runs end to end (``--smoke``, no Chromium) and writes its JSON, table and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.joins import EDGE
from bench.run import SMOKE, bench_main, run_figures
from pbfm_tooling.local_stack import LocalStack

pytestmark = pytest.mark.slow


def test_the_bench_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--smoke", "--no-chromium", "--out", str(tmp_path)]) == 0
    [written] = tmp_path.glob("*.json")
    result = json.loads(written.read_text())
    figures = result["figures"]
    assert result["complete"] is True
    assert figures["floor"]["send_to_receive"]["n"] > 0
    assert figures["registration"]["all"]["p95_ms"] > 0
    assert all(row["snapshot_plus_tail_equals_full_replay"] for row in figures["late_joiner"])
    # A joiner reads one snapshot plus a short tail, never the whole history.
    assert all(max(row["events_applied_by_joiner"]) < 2 * result["settings"]["snapshot_every"]
               for row in figures["late_joiner"])
    assert [row["browsers"] for row in figures["fanout"]] == list(SMOKE.fanout_browsers)
    assert all(set(row["delivered"]) == {row["browsers"]} for row in figures["fanout"])
    joins = figures["joins"]
    assert joins["join_scaling"]["joins"] == SMOKE.joins
    assert joins["join_scaling"]["first"]["n"] == joins["join_scaling"]["last"]["n"] == min(EDGE, SMOKE.joins // 2)
    assert joins["stale_removal"]["removed_all"] and joins["stale_removal"]["other_requests_during"]["n"] > 0
    cost = figures["cost"]
    assert cost["published"] > 0 and cost["total_dollars_per_viewer_month"] > 0
    assert cost["per_viewer_minute"]["sqs_requests"] > 0
    assert (tmp_path / written.name.replace(".json", ".svg")).read_text().startswith("<svg")
    out = capsys.readouterr().out
    assert "registration p95" in out and "longest other request during stale removal" in out


def test_each_figure_is_handed_on_as_it_is_measured(stack: LocalStack) -> None:
    # What a run killed halfway has written: everything measured before it stopped.
    seen: list[dict] = []
    figures = run_figures(stack, sizes=SMOKE, only={"registration"}, checkpoint=seen.append)
    assert [sorted(written) for written in seen] == [["floor"], ["floor", "registration"]]
    assert seen[-1] == figures
