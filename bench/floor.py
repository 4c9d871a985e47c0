"""The transport floor: raw boto3 SQS on the same moto server, no app code in the path.

* ``send_to_receive``: a blocked long-poll ``receive_message`` returns after another thread's
  ``send_message`` — the least any update can take through SQS here.
* ``single_send``: one ``send_message`` call — fan-out of N can be no faster than N of these
  (on moto; AWS would run them in parallel).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from bench.stats import summary
from chalice_app.aws import build_clients
from pbfm_tooling.local_stack import LocalStack

BODY = "x" * 600  # about the size of a PRICE_UPDATE envelope with its presigned URL


def _queue(sqs: Any, name: str) -> str:
    return str(sqs.create_queue(QueueName=f"bench-floor-{name}-{secrets.token_hex(4)}.fifo",
                                Attributes={"FifoQueue": "true", "VisibilityTimeout": "10"})["QueueUrl"])


def measure(stack: LocalStack, samples: int) -> dict[str, Any]:
    sqs = build_clients(stack.settings).sqs
    url = _queue(sqs, "rt")
    received: list[float] = []
    ready = threading.Event()
    got = threading.Event()
    stop = threading.Event()

    def receiver() -> None:
        consumer = build_clients(stack.settings).sqs
        while not stop.is_set():
            ready.set()
            response = consumer.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if messages:
                received.append(time.perf_counter())
                consumer.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
                got.set()

    thread = threading.Thread(target=receiver, name="floor-receiver", daemon=True)
    thread.start()
    round_trips: list[float] = []
    for i in range(samples):
        ready.wait(5)
        got.clear()
        time.sleep(0.05)  # let the receive park in its long poll
        started = time.perf_counter()
        sqs.send_message(QueueUrl=url, MessageBody=BODY, MessageGroupId="g", MessageDeduplicationId=f"rt{i}")
        if got.wait(5):
            round_trips.append(received[-1] - started)
    stop.set()
    thread.join(timeout=5)

    sends: list[float] = []
    for i in range(samples):
        if i % 10 == 0:  # short queues, like a browser's live queue that is being drained
            send_url = _queue(sqs, "send")
        started = time.perf_counter()
        sqs.send_message(QueueUrl=send_url, MessageBody=BODY, MessageGroupId="g", MessageDeduplicationId=f"s{i}")
        sends.append(time.perf_counter() - started)
    return {"send_to_receive": summary(round_trips, keep=True), "single_send": summary(sends)}
