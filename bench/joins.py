"""Joins at scale and stale-browser removal: what one session's size costs, and what it costs the others.

* ``join_scaling``: ``joins`` fresh identities (own cookie jars) join one session one after the
  other; each join's REST round trip is timed. The figure is the p95 of the last 20 joins over the
  p95 of the first 20 (target ≤ 1.5: a join costs the same at the 1st and the 200th viewer).
* ``stale_removal``: ``viewers`` browsers of one session go silent (their heartbeats are moved back
  past the stale limit in the store: nobody waits two minutes) and the service's sweep removes
  them, as the scheduled sweep / the local stack's sweeper does. Meanwhile another session gets an
  MCP price update after another, timed: the longest one is the figure (target ≤ 100 ms), beside
  the same requests' p50 before the removal started (the floor of this run).
"""

from __future__ import annotations

import resource
import threading
import time
from typing import Any

import httpx

from bench.harness import browser_http, new_session, register_bulk
from bench.stats import summary
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner

# The first and the last this many joins are compared (fewer when a smoke run makes fewer joins).
EDGE = 20
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2025-06-18"}


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def join_scaling(stack: LocalStack, joins: int) -> dict[str, Any]:
    session_id = new_session(stack, "joins")
    samples: list[float] = []
    for _ in range(joins):
        with browser_http(stack) as http:
            started = time.perf_counter()
            response = http.post("/api/webpage_join_session", json={"session_id": session_id})
            samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    edge = min(EDGE, joins // 2)
    first, last = summary(samples[:edge]), summary(samples[-edge:])
    return {"joins": joins, "first": first, "last": last, "all": summary(samples),
            "last_over_first_p95": round(last["p95_ms"] / first["p95_ms"], 2),
            "samples_ms": [round(s * 1000, 1) for s in samples], "max_rss_mb": _rss_mb()}


def _mcp_update(http: httpx.Client, session_id: str) -> float:
    started = time.perf_counter()
    response = http.post("/mcp", headers=MCP_HEADERS, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "webpage_update_hash_price_display",
                   "arguments": {"session_id": session_id, "source": "simulated"}}})
    elapsed = time.perf_counter() - started
    body = response.json()
    assert response.status_code == 200 and not body["result"].get("isError"), body
    return elapsed


def stale_removal(stack: LocalStack, viewers: int) -> dict[str, Any]:
    with PageRunner(stack.base_url) as pages:
        return _stale_removal(stack, pages, viewers)


def _stale_removal(stack: LocalStack, pages: PageRunner, viewers: int) -> dict[str, Any]:
    crowded = new_session(stack, "stale")
    other = new_session(stack, "other")
    browsers = register_bulk(stack, pages, crowded, viewers)
    register_bulk(stack, pages, other, 1)
    service = stack.service
    rss_before = _rss_mb()
    with browser_http(stack) as http:
        floor = [_mcp_update(http, other) for _ in range(10)]
        stale_at = time.time() - service.settings.stale_after_s - 5
        db, table = service.store._db, service.settings.table_name  # type: ignore[attr-defined]
        for browser in browsers:
            db.update_item(TableName=table,
                           Key={"PK": {"S": f"SESSION#{crowded}"}, "SK": {"S": f"CLIENT#{browser.client_id}"}},
                           UpdateExpression="SET last_heartbeat = :t",
                           ExpressionAttributeValues={":t": {"N": str(stale_at)}})
        done = threading.Event()
        took: list[float] = []

        def remove() -> None:
            started = time.perf_counter()
            service.sweep(crowded)
            took.append(time.perf_counter() - started)
            done.set()

        during: list[float] = []
        remover = threading.Thread(target=remove, name="bench-stale-removal")
        remover.start()
        while not done.is_set():
            during.append(_mcp_update(http, other))
        remover.join()
    remaining = [c.client_id for c in service.store.list_clients(crowded)]
    return {"viewers": viewers, "removal_s": round(took[0], 3), "removed_all": not remaining,
            "other_requests_before": summary(floor), "other_requests_during": summary(during),
            "longest_other_request_ms": round(max(during) * 1000, 1) if during else None,
            "max_rss_mb_before": rss_before, "max_rss_mb_after": _rss_mb()}


def measure(stack: LocalStack, *, joins: int, viewers: int) -> dict[str, Any]:
    return {"join_scaling": join_scaling(stack, joins), "stale_removal": stale_removal(stack, viewers)}
