"""Shared fixtures: one real local stack (moto server + Chalice app over HTTP) per test run."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from pbfm_tooling.local_stack import LocalStack

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
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        yield client
