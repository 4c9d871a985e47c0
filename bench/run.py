"""``pbfm-webpage bench [--quick] [--chaos] [--out DIR]``: every figure beside its floor, in one run."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import fanout, floor, joins, late_joiner, registration
from bench.report import render_table
from pbfm_tooling.local_stack import LocalStack

RESULTS = Path(__file__).parent / "results"
TARGETS = {
    "update_p95_ms": 150.0, "update_over_floor": 3.0, "registration_p95_ms": 300.0,
    "late_joiner_10000_ms": 1000.0, "fanout_over_floor": 1.2, "boot_ms": 4000.0,
    "join_last_over_first": 1.5, "stale_removal_longest_other_ms": 100.0,
    "cost_dollars_per_viewer_month": 1.0, "idle_calls_per_viewer_minute": 4.0,
}
BENCH_OVERRIDES = {
    "PBFM_PRICE_SOURCE": "simulated",
    "PBFM_COOKIE_SECRET": "bench-" + secrets.token_hex(8),
}
CHAOS_OVERRIDES = {
    **BENCH_OVERRIDES,
    "PBFM_HEARTBEAT_TIMEOUT": "2",
    "PBFM_HEARTBEAT_INTERVAL": "0.5",
    "PBFM_STALE_AFTER": "6",
    "PBFM_QUEUE_VISIBILITY_TIMEOUT": "2",
    # Presigned receives valid 35 s: a 20 s long-poll may start only in their first few seconds, so the
    # pages must keep renewing them (from heartbeat answers) throughout the run.
    "PBFM_RECEIVE_URL_LIFETIME": "35",
}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    import moto

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "python": platform.python_version(),
            "os": platform.platform(), "moto": moto.__version__}


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


FIGURES = ("registration", "joins", "late_joiner", "fanout", "chromium", "cost")


@dataclass(frozen=True)
class Sizes:
    """How much each figure measures."""

    name: str
    floor_samples: int
    registration_sessions: int
    registration_per_session: int
    joins: int
    stale_viewers: int
    fanout_browsers: tuple[int, ...]
    fanout_repeats: int
    chromium_updates: int
    cost_active_s: float
    cost_idle_s: float
    late_joiner_events: tuple[int, ...]
    late_joiner_repeats: int


FULL = Sizes("full", 100, 10, 5, 200, 100, (1, 10, 50, 200), 10, 40, 600.0, 60.0, (100, 1000, 10_000), 5)
# A few minutes: the figures are rough, the targets still judged.
QUICK = Sizes("quick", 20, 3, 4, 40, 20, (1, 10), 3, 10, 8.0, 5.0, (100, 1000), 2)
# The test suite's run: every figure's code and invariants end to end, at sizes too small to read.
SMOKE = Sizes("smoke", 10, 2, 3, 10, 5, (1, 4), 2, 5, 3.0, 2.0, (50, 200), 1)


def run_figures(stack: LocalStack, *, sizes: Sizes, only: set[str],
                checkpoint: Callable[[dict[str, Any]], None] = lambda figures: None) -> dict[str, Any]:
    """Every figure in ``only``; each is handed to ``checkpoint`` as it is measured, so a run stopped
    (or timed out) in its tenth minute keeps what it measured in the first nine."""
    figures: dict[str, Any] = {}

    def record(name: str, value: Any) -> None:
        figures[name] = value
        checkpoint(dict(figures))

    _progress("transport floor")  # always: every figure is judged against this run's floor
    record("floor", floor.measure(stack, samples=sizes.floor_samples))
    single_send = figures["floor"]["single_send"]["p50_ms"]
    if "registration" in only:
        _progress("registration")
        record("registration", registration.measure(stack, sessions=sizes.registration_sessions,
                                                    per_session=sizes.registration_per_session))
    if "joins" in only:
        _progress("joins into one session, and stale-browser removal")
        record("joins", joins.measure(stack, joins=sizes.joins, viewers=sizes.stale_viewers))
    if "fanout" in only:
        _progress("fan-out")
        record("fanout", fanout.measure(stack, list(sizes.fanout_browsers), repeats=sizes.fanout_repeats,
                                        single_send_ms=single_send))
    if "chromium" in only:
        from bench import chromium as chromium_figures

        _progress("update latency and boot in Chromium")
        floor_p95 = figures["floor"]["send_to_receive"]["p95_ms"]
        for name, value in chromium_figures.measure(stack, pages=8, updates=sizes.chromium_updates,
                                                    floor_ms=floor_p95).items():
            record(name, value)
    if "cost" in only:
        from bench import cost

        _progress("AWS cost model (viewers at 1 update/s)")
        record("cost", cost.measure(stack, viewers=4, seconds=sizes.cost_active_s,
                                    idle_seconds=sizes.cost_idle_s))
    if "late_joiner" in only:
        # Last: it seeds 11,000+ events into the table, and the local sweeper's scans walk all of it.
        _progress("late joiner")
        record("late_joiner", late_joiner.measure(
            stack, list(sizes.late_joiner_events), repeats=sizes.late_joiner_repeats))
    return figures


def bench_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pbfm-webpage bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (~40 s): rough figures, targets judged")
    size.add_argument("--smoke", action="store_true",
                      help="the smallest sizes (the test suite's run, ~20 s): the harness end to end only")
    parser.add_argument("--chaos", action="store_true", help="the chaos run instead of the figures")
    parser.add_argument("--events", type=int, default=5000, help="chaos: events to stream")
    parser.add_argument("--rate", type=float, default=20.0, help="chaos: events per second")
    parser.add_argument("--no-chromium", action="store_true", help="skip the figures that need real Chromium")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated subset of {','.join(FIGURES)} (the floor always runs)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for <date>.json and the plot")
    args = parser.parse_args(argv)
    logging.getLogger("chalice_app").setLevel(logging.WARNING)

    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    result: dict[str, Any] = {"date": stamp, "machine": machine(), "targets": TARGETS}
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    flags = [flag for flag in ("quick", "smoke", "chaos") if getattr(args, flag)]
    name = "-".join([stamp, *flags])
    json_path = args.out / f"{name}.json"

    def checkpoint(figures: dict[str, Any]) -> None:
        partial = {**result, "figures": figures, "complete": False,
                   "duration_s": round(time.perf_counter() - started, 1)}
        json_path.write_text(json.dumps(partial, indent=2, sort_keys=True) + "\n")

    overrides = CHAOS_OVERRIDES if args.chaos else BENCH_OVERRIDES
    # The chaos run restarts the stack mid-stream: it needs a state directory of its own (removed after).
    with contextlib.ExitStack() as cleanup:
        state_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="pbfm-chaos-state-"))) \
            if args.chaos else None
        stack = cleanup.enter_context(LocalStack(overrides=overrides, state_dir=state_dir))
        result["settings"] = {"snapshot_every": stack.settings.snapshot_every,
                              "heartbeat_timeout_s": stack.settings.heartbeat_timeout_s,
                              "queue_visibility_timeout_s": stack.settings.queue_visibility_timeout_s,
                              "tcp_nodelay": True}
        if args.chaos:
            from bench.chaos import ChaosPlan, run_chaos

            plan = ChaosPlan(events=args.events, rate=args.rate)
            result["chaos"] = run_chaos(stack, plan, progress=_progress)
        else:
            result["sizes"] = asdict(sizes)
            only = set(args.only.split(",")) - ({"chromium"} if args.no_chromium else set())
            result["figures"] = run_figures(stack, sizes=sizes, only=only, checkpoint=checkpoint)
    result["duration_s"] = round(time.perf_counter() - started, 1)
    result["complete"] = True
    json_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if "figures" in result:
        from bench.plot import write_plot

        plot_path = write_plot(result, args.out / f"{name}.svg")
        result["plot"] = str(plot_path)
    print(render_table(result))
    print(f"\nwritten: {json_path}" + (f" and {result['plot']}" if "plot" in result else ""))
    if args.chaos:
        return 0 if result["chaos"]["ok"] else 1
    return 0
