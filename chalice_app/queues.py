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

# The history queue is one message group: SQS hands a join's history out in order, a batch at a
# time (the page deletes each batch before it asks for the next).
HISTORY_GROUP_ID = "events"


def live_group_id(dedup_id: str) -> str:
    """A group of its own for each live message. The page acknowledges live messages with its next
    heartbeat, seconds later; in a shared group the first unacknowledged one would hold back every
    message behind it until then. SQS then promises no order across messages, which the page does
    not need from it: it sorts each batch and repairs a gap by sequence number."""
    return f"event-{dedup_id}"
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
                QueueUrl=url, MessageBody=envelope.to_json(), MessageGroupId=live_group_id(dedup_id),
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
                    "MessageGroupId": HISTORY_GROUP_ID,
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

    def receive(self, url: str, wait_seconds: int, max_messages: int, *, visibility_timeout_s: int | None = None
                ) -> list[tuple[str, str]]:
        visibility = {} if visibility_timeout_s is None else {"VisibilityTimeout": visibility_timeout_s}
        try:
            response = self._sqs.receive_message(
                QueueUrl=url, WaitTimeSeconds=wait_seconds, MaxNumberOfMessages=max_messages, **visibility,
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
