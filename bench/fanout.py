"""Fan-out: one publish to the live queues of N page tabs, each running the shipped ``SessionManager``.

Per publish we record
* ``publish``: the whole ``SessionService.publish`` call (append to the log, list the browsers,
  send to every live queue);
* ``fanout``: only the sends — first send started to last send finished, timed around
  ``SessionService._deliver`` on this process's service — compared with N x the single-send floor;
* ``fanout_idle``: the same sends while no tab polls (measured before the tabs' loops start, so
  nothing else in this process competes);
* ``all_applied``: publish started → the last of the N tabs, each running the page's loop (long
  polls of ``live_wait_s``, heartbeats, acknowledgements), has applied the event (its ``on_apply``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import last_seq, new_session, price_documents, publish_price, register_bulk
from bench.stats import summary
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner, Tab
from web_py.messages import Envelope

# Long polls as the page makes them; shorter than its 20 s only so a tab that missed a publish
# re-polls (and its abandoned polls end) quickly. Every publish below wakes the polls at once.
LIVE_WAIT_S = 5
APPLY_TIMEOUT_S = 30.0


class _DeliverTimer:
    """Wraps the service's per-browser send to find the span of one fan-out."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self._original = service._deliver
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> _DeliverTimer:
        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return self._original(*args)
            finally:
                with self._lock:
                    self.spans.append((started, time.perf_counter()))

        self._service._deliver = timed
        return self

    def __exit__(self, *exc: object) -> None:
        del self._service._deliver  # back to the class's method

    def take(self) -> float:
        with self._lock:
            spans, self.spans = self.spans, []
        return max(end for _, end in spans) - min(start for start, _ in spans)


class _AppliedAt:
    """When each tab applied each seq (the shipped loop's ``on_apply`` hook)."""

    def __init__(self, tabs: list[Tab]) -> None:
        self.stamps: list[dict[int, float]] = [{} for _ in tabs]
        for tab, stamps in zip(tabs, self.stamps, strict=True):
            tab.manager.on_apply = self._recorder(stamps)

    @staticmethod
    def _recorder(stamps: dict[int, float]) -> Any:
        def record(envelope: Envelope, source: str) -> None:
            stamps.setdefault(envelope.seq, time.perf_counter())

        return record

    def last(self, seq: int) -> float | None:
        """When the last tab applied ``seq``; None if one has not."""
        times = [stamps.get(seq) for stamps in self.stamps]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)


def _wait_all(tabs: list[Tab], seq: int, errors: list[str]) -> None:
    for tab in tabs:
        try:
            tab.catch_up(seq, timeout_s=APPLY_TIMEOUT_S)
        except Exception as exc:  # reported, never hidden
            errors.append(f"{tab.client_id}: {exc!r}"[:300])


def measure(stack: LocalStack, sizes: list[int], repeats: int, single_send_ms: float) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        with PageRunner(stack.base_url, live_wait_s=LIVE_WAIT_S) as pages:
            rows.append(_measure_size(stack, pages, size, repeats, single_send_ms))
    return rows


def _measure_size(stack: LocalStack, pages: PageRunner, size: int, repeats: int,
                  single_send_ms: float) -> dict[str, Any]:
    session_id = new_session(stack, "fan")
    setup_started = time.perf_counter()
    tabs = register_bulk(stack, pages, session_id, size)
    keys = price_documents(stack, session_id, repeats + 1)
    publishes: list[float] = []
    fanouts: list[float] = []
    all_applied: list[float] = []
    errors: list[str] = []
    idle: list[float] = []
    delivered = []
    with _DeliverTimer(stack.service) as timer:
        # The sends with nobody polling (the tabs' loops have not started): what fan-out costs when
        # the browsers' own requests, served by this same process, do not compete with it.
        for i in range(repeats):
            publish_price(stack, session_id, keys[i])
            idle.append(timer.take())
        applied_at = _AppliedAt(tabs)
        for tab in tabs:
            tab.start()
        _wait_all(tabs, last_seq(stack, session_id), errors)
        setup_s = time.perf_counter() - setup_started
        for i in range(repeats + 1):  # the first publish warms up (connections, caches)
            target = last_seq(stack, session_id) + 1
            time.sleep(0.3 + size * 0.003)  # every tab parked in its long poll
            started = time.perf_counter()
            delivery = publish_price(stack, session_id, keys[i])
            published = time.perf_counter() - started
            fanout = timer.take()
            _wait_all(tabs, target, errors)
            if i == 0:
                continue
            assert delivery.seq == target, (delivery.seq, target)
            delivered.append(delivery.delivered)
            publishes.append(published)
            fanouts.append(fanout)
            last = applied_at.last(target)
            if last is not None:
                all_applied.append(last - started)
    fanout_p50 = summary(fanouts)["p50_ms"]
    floor_ms = size * single_send_ms
    return {
        "browsers": size, "setup_s": round(setup_s, 1), "delivered": delivered, "errors": errors[:5],
        "publish": summary(publishes), "fanout": summary(fanouts), "fanout_idle": summary(idle),
        "all_applied": summary(all_applied),
        "n_x_single_send_ms": round(floor_ms, 2),
        "fanout_over_floor": round(fanout_p50 / floor_ms, 2) if floor_ms else None,
        "fanout_idle_over_floor": round(summary(idle)["p50_ms"] / floor_ms, 2) if floor_ms else None,
        "publish_over_floor": round(summary(publishes)["p50_ms"] / floor_ms, 2) if floor_ms else None,
    }
