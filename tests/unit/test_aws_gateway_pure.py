"""The gateway's pure parts: AWS's XML shapes (read back by botocore's own parsers) and SigV4 checks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
from botocore import parsers

from chalice_app.presign import presign_receive_message
from pbfm_tooling.aws_gateway import (
    AwsError,
    Incoming,
    Verifier,
    read_signature,
    receive_message_xml,
    s3_error_xml,
    sqs_error_xml,
)

NS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
T0 = 1_764_600_000
HOST = "127.0.0.1:4566"
QUEUE = f"http://{HOST}/123456789012/q.fifo"


def incoming(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Incoming:
    from pbfm_tooling.aws_gateway import _decode_pairs

    parts = urlsplit(url)
    return Incoming(method=method, path=parts.path, query=_decode_pairs(parts.query),
                    headers={"host": parts.netloc, **(headers or {})}, body=b"", raw_query=parts.query)


def presigned(**options: object) -> str:
    arguments: dict = {"access_key": "key", "secret_key": "secret", "session_token": "token",
                       "region": "us-west-1", "clock": lambda: T0, **options}
    return presign_receive_message(QUEUE, **arguments).url


def verifier(now: float = T0 + 10) -> Verifier:
    return Verifier("key", "secret", "token", "us-west-1", clock=lambda: now)


def check(url: str, now: float = T0 + 10) -> None:
    request = incoming(url)
    signed = read_signature(request)
    assert signed is not None
    verifier(now).verify(request, signed, HOST)


def test_sqs_errors_are_what_botocores_query_parser_reads() -> None:
    body = sqs_error_xml(AwsError(403, "SignatureDoesNotMatch", "Signature expired: <now>"), "req-1")
    parsed = parsers.QueryParser().parse({"body": body, "headers": {}, "status_code": 403}, None)
    assert parsed["Error"]["Code"] == "SignatureDoesNotMatch"
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["Error"]["Message"] == "Signature expired: <now>"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_s3_errors_are_what_botocores_rest_xml_parser_reads() -> None:
    body = s3_error_xml(AwsError(403, "AccessDenied", "Request has expired", {"X-Amz-Expires": "60"}), "req-2")
    parsed = parsers.RestXMLParser().parse({"body": body, "headers": {}, "status_code": 403}, None)
    assert parsed["Error"]["Code"] == "AccessDenied"
    assert parsed["Error"]["Message"] == "Request has expired"
    assert ET.fromstring(body).findtext("X-Amz-Expires") == "60"


def test_receive_xml_escapes_bodies_and_renders_attributes() -> None:
    body = receive_message_xml([{
        "MessageId": "m-1", "ReceiptHandle": "r&1", "MD5OfBody": "abc", "Body": "<x a=\"1\">&amp;</x> ü",
        "Attributes": {"SentTimestamp": "1700000000000"},
        "MD5OfMessageAttributes": "def",
        "MessageAttributes": {"kind": {"StringValue": "price", "DataType": "String"},
                              "blob": {"BinaryValue": b"\x00\xff", "DataType": "Binary"}},
    }], "req-3")
    root = ET.fromstring(body)
    message = root.find("sqs:ReceiveMessageResult/sqs:Message", NS)
    assert message is not None
    assert message.findtext("sqs:Body", namespaces=NS) == "<x a=\"1\">&amp;</x> ü"
    assert message.findtext("sqs:ReceiptHandle", namespaces=NS) == "r&1"
    assert message.findtext("sqs:Attribute/sqs:Name", namespaces=NS) == "SentTimestamp"
    values = {a.findtext("sqs:Name", namespaces=NS): a.find("sqs:Value", NS)
              for a in message.iterfind("sqs:MessageAttribute", NS)}
    assert values["kind"].findtext("sqs:StringValue", namespaces=NS) == "price"  # type: ignore[union-attr]
    assert values["blob"].findtext("sqs:BinaryValue", namespaces=NS) == "AP8="  # type: ignore[union-attr]
    assert root.findtext("sqs:ResponseMetadata/sqs:RequestId", namespaces=NS) == "req-3"


def test_an_unsigned_request_has_no_signature() -> None:
    assert read_signature(incoming(QUEUE + "?Action=ReceiveMessage")) is None


@pytest.mark.parametrize("query", [
    "X-Amz-Credential=key%2F20251201%2Fus-west-1%2Fsqs",  # scope too short, the rest missing
    "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=key%2F20251201%2Fus-west-1%2Fsqs%2Faws4_request"
    "&X-Amz-Date=20251201T144000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=key%2F20251201%2Fus-west-1%2Fsqs%2Faws4_request"
    "&X-Amz-Date=20251201T144000Z&X-Amz-Expires=soon&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
])
def test_malformed_query_signatures_are_incomplete(query: str) -> None:
    with pytest.raises(AwsError) as refused:
        read_signature(incoming(f"{QUEUE}?{query}"))
    assert (refused.value.status, refused.value.code) == (400, "IncompleteSignature")


def test_a_repeated_auth_parameter_is_refused() -> None:
    url = presigned()
    with pytest.raises(AwsError):
        read_signature(incoming(url + "&X-Amz-Date=20251201T144000Z"))


def test_a_presigned_url_verifies_until_it_expires() -> None:
    url = presigned(expires_s=60)
    check(url, now=T0)
    check(url, now=T0 + 60)
    with pytest.raises(AwsError) as refused:
        check(url, now=T0 + 61)
    assert refused.value.code == "SignatureDoesNotMatch" and refused.value.message.startswith("Signature expired")


def test_the_host_is_part_of_the_signature() -> None:
    request = incoming(presigned())
    signed = read_signature(request)
    assert signed is not None
    with pytest.raises(AwsError) as refused:
        verifier().verify(request, signed, "127.0.0.1:4567")
    assert refused.value.code == "SignatureDoesNotMatch"


def test_a_differently_percent_encoded_but_equal_query_still_verifies() -> None:
    url = presigned()
    # %2F and %2f are the same byte; AWS canonicalises, so must we.
    check(url.replace("%2F", "%2f"))
