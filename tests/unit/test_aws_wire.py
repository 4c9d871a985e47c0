"""AWS's wire formats as the gateway writes them, read back by botocore's own parsers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from botocore import parsers

from pbfm_tooling.aws_wire import AwsError, receive_message_xml, s3_error_xml, sqs_error_xml

NS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}


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
