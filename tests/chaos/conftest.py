from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from pbfm_tooling.local_stack import LocalStack
from tests.conftest import TEST_OVERRIDES


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack of its own with a state directory: the chaos run restarts it mid-stream.

    A restart deletes the stack's table, bucket and queues (what a process exit loses; moto servers in
    one process share their state), so they are named for this module only. Presigned receives valid
    35 s: a 20 s long-poll may start only in a URL's first few seconds (the page keeps a 10 s margin),
    so the pages must renew them (from heartbeat answers) all through the run. (31 s left no room for
    the rounding of the signature's second: a renewed URL was sometimes already too old to use.) Its
    sweeper runs, as in ``serve``: it removes the dead master.
    """
    own = secrets.token_hex(3)
    overrides = {**TEST_OVERRIDES, "PBFM_RECEIVE_URL_LIFETIME": "35", "PBFM_LOCAL_SWEEP_EVERY": "1",
                 "PBFM_TABLE": f"chaos-{own}",
                 "PBFM_BUCKET": f"chaos-{own}", "PBFM_QUEUE_PREFIX": f"chaos{own}"}
    with LocalStack(overrides=overrides, state_dir=tmp_path_factory.mktemp("state")) as running:
        yield running
