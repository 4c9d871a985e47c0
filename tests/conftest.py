"""Shared fixtures: one real local stack (moto server + Chalice app over HTTP) per test run."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from pbfm_tooling.local_stack import LocalStack

# Short liveness timings so failover tests run in seconds.
TEST_OVERRIDES = {
    "PBFM_HEARTBEAT_TIMEOUT": "3",
    "PBFM_HEARTBEAT_INTERVAL": "1",
    "PBFM_STALE_AFTER": "8",
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
