"""A smoke test of a running deployment: one session end to end, the way its users use it.

``./deploy.sh dev --test`` runs it against the URL the deploy produced (the tests run it against the
local stack). The assistant's side goes through the real MCP client; the viewer's side is the
page's own ``SessionManager`` over HTTP. Every step is timed and the first failure stops the run
with what went wrong, so a broken deployment fails loudly.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from pbfm_tooling.ai_driver import call_tool
from pbfm_tooling.page_runner import PageRunner, Tab


class SmokeFailed(RuntimeError):
    """A step of the smoke test failed; the message names it."""


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    detail: str


def run_smoke_test(base_url: str, *, token: str | None = None, timeout_s: float = 60.0,
                   report: Callable[[Step], None] = lambda step: None) -> list[Step]:
    """Create a session, watch it as a browser, publish a price over MCP, see it arrive, end it.

    ``base_url`` is what a user opens, stage prefix included (``https://…/api``).
    """
    base = base_url.rstrip("/")
    mcp_url = f"{base}/mcp"
    session_id = "smoke-" + secrets.token_hex(4)
    steps: list[Step] = []

    def step(name: str, action: Callable[[], str]) -> None:
        began = time.monotonic()
        try:
            detail = action()
        except Exception as exc:
            raise SmokeFailed(f"{name}: {type(exc).__name__}: {exc}") from exc
        done = Step(name, time.monotonic() - began, detail)
        steps.append(done)
        report(done)

    def create() -> str:
        created = call_tool(mcp_url, "webpage_create_session", {"session_id": session_id}, token)
        if created.get("session_id") != session_id:
            raise SmokeFailed(f"created {created!r}")
        return f"session {session_id}"

    def page() -> str:
        answer = httpx.get(f"{base}/session/{session_id}", timeout=timeout_s, headers={"Accept": "text/html"})
        if answer.status_code != 200 or "text/html" not in answer.headers.get("content-type", ""):
            raise SmokeFailed(f"GET /session/{session_id}: HTTP {answer.status_code}")
        return f"{len(answer.content)} bytes of HTML"

    with PageRunner(base) as runner:
        viewer: Tab = runner.open(session_id)

        def join() -> str:
            joined = viewer.join()
            viewer.start()
            viewer.wait_until(lambda tab: tab.manager.view.connection == "live", timeout_s)
            return f"{joined.role} {joined.client_id}, live"

        published: dict[str, Any] = {}

        def update() -> str:
            published.update(call_tool(mcp_url, "webpage_update_hash_price_display", {"session_id": session_id},
                                       token))
            return f"seq {published['seq']}, {published['price']['display_price']} from {published['price']['source']}"

        def arrive() -> str:
            viewer.catch_up(int(published["seq"]), timeout_s)
            shown = viewer.state.price
            expected = published["price"]["display_price"]
            if shown is None or shown.display_price != expected:
                raise SmokeFailed(f"the browser shows {shown!r}, the AI published {expected}")
            return f"the browser shows {expected} at seq {viewer.last_seq}"

        try:
            step("create a session over MCP", create)
            step("serve the session page", page)
            step("join as a browser", join)
            step("publish a price over MCP", update)
            step("the browser receives it", arrive)
        finally:
            viewer.close()
            try:
                call_tool(mcp_url, "webpage_end_session", {"session_id": session_id, "reason": "smoke test"}, token)
            except Exception as exc:  # the failure that matters was raised above
                report(Step("end the session", 0.0, f"could not end {session_id}: {exc}"))
    return steps
