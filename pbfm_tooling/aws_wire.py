"""The wire formats of the local AWS gateway: requests as received, and AWS's own answers.

SQS's Query API answers in XML under ``http://queue.amazonaws.com/doc/2012-11-05/``: an action's
``<{Action}Response>`` holds ``<{Action}Result>`` and ``<ResponseMetadata><RequestId>``; an error is
``<ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message><Detail/></Error>
<RequestId>…</RequestId></ErrorResponse>`` (SQS developer guide, "Interpreting Amazon SQS XML API
responses"). ReceiveMessage's members follow botocore's SQS model: ``Message`` elements (a flattened
list), each with ``MessageId``, ``ReceiptHandle``, ``MD5OfBody``, ``Body``, flattened ``Attribute``
(``Name``/``Value``) and ``MessageAttribute`` (``Name``/``Value`` with ``StringValue``/``BinaryValue``/
``DataType``). S3's errors are ``<Error><Code/><Message/>…<RequestId/><HostId/></Error>``.
ElementTree escapes every text, so a message body is returned byte for byte.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from base64 import b64encode
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

SQS_NS = "http://queue.amazonaws.com/doc/2012-11-05/"


@dataclass(frozen=True)
class Incoming:
    method: str
    path: str  # as sent, percent-encoded
    query: list[tuple[str, str]]  # decoded pairs, in order
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    raw_query: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Outgoing:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""


class AwsError(Exception):
    """An error AWS would answer; rendered in the format of the service that answers it."""

    def __init__(self, status: int, code: str, message: str, extra: Mapping[str, str] | None = None,
                 sender: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})
        self.sender = sender


def sqs_error_xml(error: AwsError, request_id: str) -> bytes:
    root = ET.Element("ErrorResponse", xmlns=SQS_NS)
    err = ET.SubElement(root, "Error")
    ET.SubElement(err, "Type").text = "Sender" if error.sender else "Receiver"
    ET.SubElement(err, "Code").text = error.code
    ET.SubElement(err, "Message").text = error.message
    ET.SubElement(err, "Detail")
    ET.SubElement(root, "RequestId").text = request_id
    return b'<?xml version="1.0"?>' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def s3_error_xml(error: AwsError, request_id: str) -> bytes:
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = error.code
    ET.SubElement(root, "Message").text = error.message
    for name, value in error.extra.items():
        ET.SubElement(root, name).text = value
    ET.SubElement(root, "RequestId").text = request_id
    ET.SubElement(root, "HostId").text = b64encode(request_id.encode()).decode()
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def receive_message_xml(messages: Iterable[Mapping[str, Any]], request_id: str) -> bytes:
    """ReceiveMessage's Query-API answer, as AWS writes it (botocore's SQS model: flattened lists)."""
    root = ET.Element("ReceiveMessageResponse", xmlns=SQS_NS)
    result = ET.SubElement(root, "ReceiveMessageResult")
    for message in messages:
        element = ET.SubElement(result, "Message")
        for name in ("MessageId", "ReceiptHandle", "MD5OfBody", "Body"):
            if name in message:
                ET.SubElement(element, name).text = str(message[name])
        for attr_name, attr_value in sorted(message.get("Attributes", {}).items()):
            attribute = ET.SubElement(element, "Attribute")
            ET.SubElement(attribute, "Name").text = attr_name
            ET.SubElement(attribute, "Value").text = str(attr_value)
        if "MD5OfMessageAttributes" in message:
            ET.SubElement(element, "MD5OfMessageAttributes").text = message["MD5OfMessageAttributes"]
        for attr_name, value in sorted(message.get("MessageAttributes", {}).items()):
            attribute = ET.SubElement(element, "MessageAttribute")
            ET.SubElement(attribute, "Name").text = attr_name
            holder = ET.SubElement(attribute, "Value")
            if "StringValue" in value:
                ET.SubElement(holder, "StringValue").text = value["StringValue"]
            if "BinaryValue" in value:
                ET.SubElement(holder, "BinaryValue").text = b64encode(value["BinaryValue"]).decode()
            ET.SubElement(holder, "DataType").text = value.get("DataType", "String")
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = request_id
    return b'<?xml version="1.0"?>' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def decode_query(raw: str) -> list[tuple[str, str]]:
    """Query pairs, percent-decoded; '+' stays '+' (SigV4 encodes a space as %20)."""
    pairs = []
    for part in raw.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs
