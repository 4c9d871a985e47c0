"""What the contract suite cannot show on moto (whose SQS keeps real time): visibility on the injected clock."""

from __future__ import annotations

from pbfm_tooling.memory_backends import ManualClock, MemoryBrowserQueues
from web_py.messages import Envelope, MessageType


def test_an_unacknowledged_message_comes_back_when_its_visibility_timeout_passes_on_the_clock() -> None:
    clock = ManualClock()
    queues = MemoryBrowserQueues("p", visibility_timeout_s=10, clock=clock)
    url = queues.create("s", "aaaaaaaaaaaa").live_url
    queues.send(url, Envelope("s", 1, MessageType.PRICE_UPDATE, 1.0, s3_key="k"), "1")
    (first, body), = queues.receive(url, 0, 10)
    clock.advance(9.5)
    assert queues.receive(url, 0, 10) == []
    clock.advance(0.5)
    (second, again), = queues.receive(url, 0, 10)
    assert again == body and second != first
