"""moto's SQS builds a queue's attributes cheaply (pbfm_tooling/moto_sqs_attributes.py): the same
values, and a send no longer reads the clock through ``datetime`` nor converts a name per message
or attribute it looks at."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

from pbfm_tooling.moto_sqs_attributes import make_sqs_attributes_cheap


def test_the_clock_and_the_names_read_as_moto_s_own() -> None:
    from moto.core import utils
    from moto.sqs import models

    make_sqs_attributes_cheap()
    make_sqs_attributes_cheap()  # idempotent
    before = utils.unix_time()
    now = models.unix_time()
    after = utils.unix_time()
    assert before - 0.001 <= now <= after + 0.001
    assert utils.unix_time_millis() - 5 <= models.unix_time_millis() <= utils.unix_time_millis() + 5
    moment = datetime.datetime(2026, 12, 7, 17, 0, 0, 250_000)
    assert models.unix_time(moment) == utils.unix_time(moment)
    assert models.unix_time_millis(moment) == utils.unix_time_millis(moment)
    for name in ("ApproximateNumberOfMessagesNotVisible", "FifoQueue", "KmsMasterKeyId", "RedrivePolicy", ""):
        assert models.camelcase_to_underscores(name) == utils.camelcase_to_underscores(name)


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_fifo_send_does_no_work_per_message_or_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core import utils
    from moto.sqs import models

    make_sqs_attributes_cheap()
    backend = models.SQSBackend("us-west-1", "123456789012")
    backend.create_queue("cheap.fifo", FifoQueue="true")
    for n in range(50):
        backend.send_message("cheap.fifo", "x", group_id="g", deduplication_id=f"before-{n}")
    clock_reads = _counting(monkeypatch, utils, "utcnow")
    converted = models.camelcase_to_underscores.cache_info()
    backend.send_message("cheap.fifo", "x", group_id="g", deduplication_id="after")
    # moto's own: 801 clock reads (~16 per message queued) and 72 conversions (18 names, 4 times).
    assert len(clock_reads) < 10, len(clock_reads)
    after = models.camelcase_to_underscores.cache_info()
    assert after.misses == converted.misses and after.hits >= converted.hits + 18
    [received] = backend.receive_message("cheap.fifo", count=1, wait_seconds_timeout=0, visibility_timeout=30)
    assert received.body == "x"
    assert backend.get_queue("cheap.fifo").attributes["FifoQueue"] == "true"
