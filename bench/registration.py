"""Registration: join request sent → role and both queues ready (the REST response), over HTTP.

A join creates two FIFO queues, writes the CLIENT item, settles the master, publishes PARTICIPANTS
to every browser already there and sends the history; so its cost grows with the session's size.
Each sample is a fresh browser (own cookie jar) joining a session of ``per_session`` browsers.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import browser_http, new_session
from bench.stats import summary
from pbfm_tooling.local_stack import LocalStack


def measure(stack: LocalStack, sessions: int, per_session: int) -> dict[str, Any]:
    first: list[float] = []
    later: list[float] = []
    for _ in range(sessions):
        session_id = new_session(stack, "reg")
        for n in range(per_session):
            with browser_http(stack) as http:
                started = time.perf_counter()
                response = http.post("/api/webpage_join_session", json={"session_id": session_id})
                elapsed = time.perf_counter() - started
            joined = response.json()
            assert response.status_code == 200 and joined["role"] in {"master", "observer"}, response.text
            (first if n == 0 else later).append(elapsed)
    return {"all": summary(first + later), "first_join": summary(first), "observer_join": summary(later),
            "per_session": per_session}
