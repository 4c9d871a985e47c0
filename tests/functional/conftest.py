"""The functional tests' client: the local stack's own app, in process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from pbfm_tooling.local_stack import LocalStack


@pytest.fixture
def client(stack: LocalStack) -> Iterator[Client]:
    with Client(stack.app) as test_client:
        yield test_client
