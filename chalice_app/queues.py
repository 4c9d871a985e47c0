"""SQS: the two FIFO queues of each browser (live and history)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from chalice_app.aws import aws_errors, error_code, is_queue_missing
from chalice_app.errors import Conflict, Gone
from chalice_app.ports import QueueMissing, QueuePair
from web_py.messages import Envelope

# One group per queue: SQS keeps the whole queue in order and hands out one batch at a time.
GROUP_ID = "events"
SQS_NAME_LIMIT = 80
SQS_BATCH = 10


def queue_names(prefix: str, session_id: str, client_id: str) -> tuple[str, str]:
    """The live and history queue names of a browser: fixed by its ids, so its URLs never change."""
    base = f"{prefix}-session-{session_id}-browser-{client_id}"
    live, history = f"{base}.fifo", f"{base}-history.fifo"
    # Ids are validated at the edge; this guards the prefix setting.
    assert len(history) <= SQS_NAME_LIMIT, f"queue name too long: {history}"
    return live, history


@contextmanager
def _missing_as(url: str) -> Iterator[None]:
    """A deleted queue is QueueMissing (the caller removes its browser); other failures pass on."""
    try:
        yield
    except ClientError as exc:
        if is_queue_missing(exc):
            raise QueueMissing(url) from exc
        raise


class SqsBrowserQueues:
    """The browser queues on SQS FIFO queues, named by ``queue_names``."""

    def __init__(self, sqs: Any, prefix: str, visibility_timeout_s: int = 10) -> None:
        self._sqs = sqs
        self._prefix = prefix
        self._visibility = visibility_timeout_s

    def names(self, session_id: str, client_id: str) -> tuple[str, str]:
        return queue_names(self._prefix, session_id, client_id)

    def create(self, session_id: str, client_id: str) -> QueuePair:
        live_name, history_name = self.names(session_id, client_id)
        return QueuePair(self._create(live_name), self._create(history_name))

    def _create(self, name: str) -> str:
        try:
            response = self._sqs.create_queue(
                QueueName=name,
                Attributes={
                    "FifoQueue": "true",
                    "VisibilityTimeout": str(self._visibility),
                    "MessageRetentionPeriod": str(24 * 3600),
                },
            )
        except ClientError as exc:
            if error_code(exc) in {"AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"}:
                raise Conflict("This browser's queue was deleted less than 60 s ago; join again shortly.") from exc
            with aws_errors("creating a queue"):
                raise
        return str(response["QueueUrl"])

    def exists(self, url: str) -> bool:
        try:
            self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        except ClientError as exc:
            if is_queue_missing(exc):
                return False
            with aws_errors("checking a queue"):
                raise
        return True

    def send(self, url: str, envelope: Envelope, dedup_id: str) -> None:
        with aws_errors("sending to a queue"), _missing_as(url):
            self._sqs.send_message(
                QueueUrl=url, MessageBody=envelope.to_json(), MessageGroupId=GROUP_ID,
                MessageDeduplicationId=dedup_id,
            )

    def send_all(self, url: str, envelopes: Sequence[Envelope], dedup_prefix: str) -> None:
        """Send in order, ten per request (SQS keeps batch order within one message group)."""
        for start in range(0, len(envelopes), SQS_BATCH):
            chunk = envelopes[start : start + SQS_BATCH]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": env.to_json(),
                    "MessageGroupId": GROUP_ID,
                    "MessageDeduplicationId": f"{dedup_prefix}-{start + i}",
                }
                for i, env in enumerate(chunk)
            ]
            with aws_errors("sending to a queue"), _missing_as(url):
                result = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
            if result.get("Failed"):
                # Stop rather than skip: a hole in the history would break ordering.
                failed = result["Failed"][0]
                raise QueueMissing(f"{url}: batch entry failed: {failed.get('Code')}")

    def receive(self, url: str, wait_seconds: int, max_messages: int) -> list[tuple[str, str]]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=url, WaitTimeSeconds=wait_seconds, MaxNumberOfMessages=max_messages,
            )
        except ClientError as exc:
            if is_queue_missing(exc):
                raise Gone("This browser's queue no longer exists; join the session again.") from exc
            with aws_errors("receiving from a queue"):
                raise
        return [(m["ReceiptHandle"], m["Body"]) for m in response.get("Messages", [])]

    def delete(self, url: str, receipt_handles: Sequence[str]) -> int:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(receipt_handles)]
        try:
            response = self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        except ClientError as exc:
            if is_queue_missing(exc):
                raise Gone("This browser's queue no longer exists; join the session again.") from exc
            with aws_errors("deleting messages"):
                raise
        # A receipt that expired (visibility timeout passed) fails harmlessly: the message comes back
        # and the processor drops it as already applied.
        return len(response.get("Successful", []))

    def delete_queue(self, url: str) -> None:
        try:
            self._sqs.delete_queue(QueueUrl=url)
        except ClientError as exc:
            if not is_queue_missing(exc):
                with aws_errors("deleting a queue"):
                    raise
