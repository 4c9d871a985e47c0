"""moto's SQS reads now from the clock directly (pbfm_tooling/moto_sqs_clock.py): the same values,
and a send no longer looks at the clock through ``datetime`` once per message in the queue."""

from __future__ import annotations

import datetime
import time

import pytest

from pbfm_tooling.moto_sqs_clock import make_sqs_read_the_clock_directly


def test_the_clock_reads_as_moto_s_own() -> None:
    from moto.core import utils
    from moto.sqs import models

    make_sqs_read_the_clock_directly()
    make_sqs_read_the_clock_directly()  # idempotent
    before = utils.unix_time()
    now = models.unix_time()
    after = utils.unix_time()
    assert before - 0.001 <= now <= after + 0.001
    assert utils.unix_time_millis() - 5 <= models.unix_time_millis() <= utils.unix_time_millis() + 5
    moment = datetime.datetime(2026, 12, 7, 17, 0, 0, 250_000)
    assert models.unix_time(moment) == utils.unix_time(moment)
    assert models.unix_time_millis(moment) == utils.unix_time_millis(moment)


def test_a_fifo_send_looks_at_the_clock_without_datetime(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core import utils
    from moto.sqs.models import SQSBackend

    make_sqs_read_the_clock_directly()
    backend = SQSBackend("us-west-1", "123456789012")
    backend.create_queue("clock.fifo", FifoQueue="true")
    for n in range(50):
        backend.send_message("clock.fifo", "x", group_id="g", deduplication_id=f"before-{n}")
    reads: list[float] = []
    real = utils.utcnow

    def counted() -> datetime.datetime:
        reads.append(time.monotonic())
        return real()

    monkeypatch.setattr(utils, "utcnow", counted)
    backend.send_message("clock.fifo", "x", group_id="g", deduplication_id="after")
    # moto's own reads it ~16 times per message already in the queue (801 times here).
    assert len(reads) < 10, len(reads)
    [received] = backend.receive_message("clock.fifo", count=1, wait_seconds_timeout=0, visibility_timeout=30)
    assert received.body == "x"
