"""SQS's answers to a presigned ``ReceiveMessage``, read the way AWS sends them (Query API, XML).

The page long-polls its own queues with a URL the server presigned; SQS answers that GET in XML.
This module turns the answer into messages (or an error with SQS's code), checking each body
against the ``MD5OfBody`` SQS computed, so a truncated or altered body is never applied.
Standard library only (``xml.etree`` and ``hashlib`` are in Pyodide's stdlib), no I/O.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass

# SQS answers at most 10 messages of at most 1 MiB each; anything far larger is not SQS.
MAX_RESPONSE_CHARS = 12 * 1024 * 1024


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str


class SqsResponseError(Exception):
    """SQS refused the request (``code`` as SQS names it) or the answer is not SQS's format."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def needs_fresh_url(self) -> bool:
        """The presigned request was refused as expired or not (or no longer) valid: ask for a new one."""
        return self.code in {"RequestExpired", "ExpiredToken", "AccessDenied", "SignatureDoesNotMatch"}

    @property
    def queue_missing(self) -> bool:
        return self.code in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _parse(text: str) -> ET.Element:
    if len(text) > MAX_RESPONSE_CHARS:
        raise SqsResponseError("InvalidResponse", f"answer of {len(text)} characters is not from SQS")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise SqsResponseError("InvalidResponse", f"answer is not XML: {exc}") from None


def parse_error(text: str) -> SqsResponseError:
    """The error in an ``<ErrorResponse>`` (or ``<Error>``) document."""
    try:
        root = _parse(text)
    except SqsResponseError as exc:
        return exc
    error = root if _local(root.tag) == "Error" else next((e for e in root.iter() if _local(e.tag) == "Error"), None)
    if error is None:
        return SqsResponseError("InvalidResponse", f"unexpected <{_local(root.tag)}> document")
    return SqsResponseError(_child_text(error, "Code") or "Unknown", _child_text(error, "Message") or "")


def parse_receive_response(text: str) -> list[ReceivedMessage]:
    """The messages of a ``<ReceiveMessageResponse>``; raises ``SqsResponseError`` for anything else."""
    root = _parse(text)
    name = _local(root.tag)
    if name in {"ErrorResponse", "Error"}:
        raise parse_error(text)
    if name != "ReceiveMessageResponse":
        raise SqsResponseError("InvalidResponse", f"unexpected <{name}> document")
    messages = []
    for element in root.iter():
        if _local(element.tag) != "Message":
            continue
        receipt = _child_text(element, "ReceiptHandle")
        body = _child_text(element, "Body")
        if not receipt or body is None:
            raise SqsResponseError("InvalidResponse", "a message lacks its receipt handle or body")
        digest = _child_text(element, "MD5OfBody")
        if digest is not None and hashlib.md5(body.encode("utf-8")).hexdigest() != digest.strip().lower():
            raise SqsResponseError("InvalidResponse", "a message body does not match its MD5OfBody")
        messages.append(ReceivedMessage(_child_text(element, "MessageId") or "", receipt, body))
    return messages
