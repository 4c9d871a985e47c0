from __future__ import annotations

from collections.abc import Iterator

import pytest

from pbfm_tooling.local_stack import LocalStack
from tests.conftest import TEST_OVERRIDES


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Presigned receives valid 31 s: a 20 s long-poll may start only in a URL's first second, so
    # the pages must renew them (from heartbeat answers) all through the run.
    with LocalStack(overrides={**TEST_OVERRIDES, "PBFM_RECEIVE_URL_LIFETIME": "31"}) as running:
        yield running
