"""The embedded AWS waits in a long poll whose FIFO group is held back, instead of spinning a core.

What a poll returns is moto's own behaviour, unchanged: a held-back group stays held for the poll,
a message of another group and a visibility timeout that runs out still end the wait.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from pbfm_tooling.moto_long_poll import make_sqs_long_polls_wait
from tests.integration.moto_in_process import FAKE, moto_server

# Seconds of waiting (that is what it tests): started early, it overlaps with busier modules.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sqs() -> Iterator[Any]:
    make_sqs_long_polls_wait()
    with moto_server() as endpoint:
        yield boto3.client("sqs", endpoint_url=endpoint, **FAKE)


def held_back_queue(sqs: Any, visibility_s: int = 30) -> str:
    """A FIFO queue whose one group has a message in flight and another visible behind it."""
    url = sqs.create_queue(QueueName=f"held-{uuid.uuid4().hex[:8]}.fifo",
                           Attributes={"FifoQueue": "true", "VisibilityTimeout": str(visibility_s)})["QueueUrl"]
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}", MessageGroupId="one", MessageDeduplicationId=f"d{n}")
    [first] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert first["Body"] == "m0"
    return str(url)


def test_a_held_back_long_poll_waits_without_burning_a_core(sqs: Any) -> None:
    url = held_back_queue(sqs)
    cpu, began = time.process_time(), time.monotonic()
    answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
    waited, used = time.monotonic() - began, time.process_time() - cpu
    assert "Messages" not in answer and waited >= 1.9
    # moto's server runs in this process: its request thread's work counts here. Spinning, it took
    # about as much CPU as it waited (2 s); waiting, a few checks of the queue.
    assert used < 0.5, f"{used:.2f} s of CPU in a {waited:.1f} s wait"


def test_a_message_of_another_group_still_ends_the_wait_at_once(sqs: Any) -> None:
    url = held_back_queue(sqs)

    def send_later() -> None:
        time.sleep(0.5)
        sqs.send_message(QueueUrl=url, MessageBody="other", MessageGroupId="two", MessageDeduplicationId="o")

    sender = threading.Thread(target=send_later)
    sender.start()
    began = time.monotonic()
    answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    sender.join()
    assert [m["Body"] for m in answer["Messages"]] == ["other"]
    assert time.monotonic() - began < 2


def test_a_visibility_timeout_that_runs_out_still_ends_the_wait(sqs: Any) -> None:
    url = held_back_queue(sqs, visibility_s=1)
    began = time.monotonic()
    answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    # The message in flight is visible again, and so handed out again first.
    assert [m["Body"] for m in answer["Messages"]] == ["m0"]
    assert time.monotonic() - began < 3
