"""Shared fixtures: one real local stack (moto server + Chalice app over HTTP) per test run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import httpx
import pytest

from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.tls import tls_context
from tests.browser.harness import RENDERER_CRASHED, RENDERER_DIED

# Short liveness timings so pages and chaos-style tests see failover in seconds (the timings
# themselves are tested on an injected clock, tests/unit). Failover still within twice the timeout:
# timeout + interval = 4 s <= 6 s. The shared stack runs no sweeper thread: tests count events,
# and a background PARTICIPANTS announcement would land between their steps (heartbeats still
# announce a changed list; tests/integration/test_local_sweeper.py runs a stack with its sweeper).
TEST_OVERRIDES = {
    "PBFM_HEARTBEAT_TIMEOUT": "3",
    "PBFM_HEARTBEAT_INTERVAL": "1",
    "PBFM_STALE_AFTER": "8",
    "PBFM_PARTICIPANTS_EVERY": "0.5",
    "PBFM_LOCAL_SWEEP_EVERY": "0",
    "PBFM_COOKIE_SECRET": "test-secret-" + secrets.token_hex(8),
    "PBFM_PRICE_SOURCE": "simulated",
    "PBFM_SNAPSHOT_EVERY": "25",
}


# Playwright's driver copies Chromium's own stderr into ours: a failing browser test then shows
# why a renderer died (V8's OOM report, a fatal CHECK, a signal) in its captured output.
os.environ.setdefault("DEBUG", "pw:browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Reruns after a renderer crash, and the order of a parallel run.

    A test in real Chromium runs once more, from fresh fixtures, if a renderer died under it.
    Full-suite runs have lost a renderer four times on record (three times under the chat view,
    once booting a plain page in CI; never a test alone, and with no reason in Chromium's stderr).
    A crash is no verdict on the page: the second run, on a new Chromium, must pass everything, and
    the report lists the rerun.

    ``./dev.sh test`` runs the suite on every core (xdist, ``--dist loadfile``: a module's tests stay
    together on one worker, so its module-scoped Chromium and stacks start once). The slow modules
    go first, so no worker is left alone with a long one at the end.
    """
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=RENDERER_CRASHED))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed and any(text in str(report.longrepr) for text in RENDERER_CRASHED):
        item.stash[RENDERER_DIED] = True
    return report


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with LocalStack(overrides=TEST_OVERRIDES) as running:
        yield running


@pytest.fixture
def session_id() -> str:
    return "t-" + secrets.token_hex(5)


@pytest.fixture
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    """One browser-like HTTP client (its own cookie jar)."""
    with httpx.Client(base_url=stack.base_url, timeout=30, verify=tls_context()) as client:
        yield client
