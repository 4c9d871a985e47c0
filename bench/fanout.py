"""Fan-out: one publish to the live queues of N headless browsers (the page's DualQueueProcessor).

Per publish we record
* ``publish``: the whole ``SessionService.publish`` call (append to the log, list the browsers,
  send to every live queue);
* ``fanout``: only the sends — first send started to last send finished, timed around
  ``SessionService._deliver`` on this process's service — compared with N x the single-send floor;
* ``fanout_idle``: the same sends while no browser polls (nothing else in this process competes);
* ``all_applied``: publish started → the last of the N browsers, each parked in a long poll over
  REST, has applied the event.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import last_seq, new_session, price_documents, publish_price, register_bulk
from bench.stats import summary
from pbfm_tooling.headless_browser import HeadlessBrowser
from pbfm_tooling.local_stack import LocalStack


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


def _poll_until(browser: HeadlessBrowser, seq: int, done: dict[str, float], errors: list[str]) -> None:
    try:
        while browser.processor.last_applied < seq:
            browser.step(wait_seconds=5)
        done[browser.client_id or "?"] = time.perf_counter()
    except Exception as exc:  # reported, never hidden
        errors.append(f"{browser.client_id}: {exc!r}")


def measure(stack: LocalStack, sizes: list[int], repeats: int, single_send_ms: float) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        session_id = new_session(stack, "fan")
        setup_started = time.perf_counter()
        browsers = register_bulk(stack, session_id, size)
        keys = price_documents(stack, session_id, repeats + 1)
        for browser in browsers:
            browser.catch_up(last_seq(stack, session_id))
        setup_s = time.perf_counter() - setup_started
        publishes: list[float] = []
        fanouts: list[float] = []
        all_applied: list[float] = []
        errors: list[str] = []
        idle: list[float] = []
        delivered = []
        with _DeliverTimer(stack.service) as timer:
            for i in range(repeats + 1):  # the first publish warms up (connections, caches)
                target = last_seq(stack, session_id) + 1
                done: dict[str, float] = {}
                threads = [threading.Thread(target=_poll_until, args=(b, target, done, errors), daemon=True)
                           for b in browsers]
                for thread in threads:
                    thread.start()
                time.sleep(0.3 + size * 0.003)  # every browser parked in its long poll
                started = time.perf_counter()
                delivery = publish_price(stack, session_id, keys[i])
                published = time.perf_counter() - started
                fanout = timer.take()
                for thread in threads:
                    thread.join(timeout=30)
                if i == 0:
                    continue
                assert delivery.seq == target, (delivery.seq, target)
                delivered.append(delivery.delivered)
                publishes.append(published)
                fanouts.append(fanout)
                if len(done) == size:
                    all_applied.append(max(done.values()) - started)
            # The same sends with nobody polling: what fan-out costs when the browsers' own
            # requests (in this same process) do not compete with it.
            for i in range(repeats):
                publish_price(stack, session_id, keys[i])
                idle.append(timer.take())
        for browser in browsers:
            browser.close()
        fanout_p50 = summary(fanouts)["p50_ms"]
        floor_ms = size * single_send_ms
        rows.append({
            "browsers": size, "setup_s": round(setup_s, 1), "delivered": delivered, "errors": errors[:5],
            "publish": summary(publishes), "fanout": summary(fanouts), "fanout_idle": summary(idle),
            "all_applied": summary(all_applied),
            "n_x_single_send_ms": round(floor_ms, 2),
            "fanout_over_floor": round(fanout_p50 / floor_ms, 2) if floor_ms else None,
            "fanout_idle_over_floor": round(summary(idle)["p50_ms"] / floor_ms, 2) if floor_ms else None,
            "publish_over_floor": round(summary(publishes)["p50_ms"] / floor_ms, 2) if floor_ms else None,
        })
    return rows
