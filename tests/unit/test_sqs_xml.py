"""Reading SQS's Query-API answers: messages, errors, and answers that are not SQS's."""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

import pytest

from web_py.sqs_xml import SqsResponseError, parse_error, parse_receive_response

NS = "http://queue.amazonaws.com/doc/2012-11-05/"


def receive_response(*bodies: str, md5: str | None = None) -> str:
    messages = "".join(
        f"<Message><MessageId>m{i}</MessageId><ReceiptHandle>r{i}+/=</ReceiptHandle>"
        f"<MD5OfBody>{md5 or hashlib.md5(body.encode()).hexdigest()}</MD5OfBody>"
        f"<Body>{escape(body)}</Body></Message>"
        for i, body in enumerate(bodies)
    )
    return (f'<?xml version="1.0"?><ReceiveMessageResponse xmlns="{NS}"><ReceiveMessageResult>{messages}'
            "</ReceiveMessageResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata>"
            "</ReceiveMessageResponse>")


def test_messages_in_order_with_escaped_bodies() -> None:
    bodies = ['{"seq":1,"text":"<b>&amp;</b>"}', '{"seq":2,"text":"naïve — ü"}']
    messages = parse_receive_response(receive_response(*bodies))
    assert [m.body for m in messages] == bodies
    assert [m.receipt_handle for m in messages] == ["r0+/=", "r1+/="]
    assert [m.message_id for m in messages] == ["m0", "m1"]


def test_an_empty_long_poll_is_no_messages() -> None:
    assert parse_receive_response(receive_response()) == []


def test_a_body_that_does_not_match_its_md5_is_refused() -> None:
    with pytest.raises(SqsResponseError, match="MD5OfBody"):
        parse_receive_response(receive_response('{"seq":1}', md5="0" * 32))


@pytest.mark.parametrize(
    ("code", "refresh", "missing"),
    [
        ("AccessDenied", True, False),
        ("SignatureDoesNotMatch", True, False),
        ("RequestExpired", True, False),
        ("AWS.SimpleQueueService.NonExistentQueue", False, True),
        ("InvalidParameterValue", False, False),
    ],
)
def test_errors_carry_sqs_code(code: str, refresh: bool, missing: bool) -> None:
    text = (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            "<Message>no</Message></Error><RequestId>x</RequestId></ErrorResponse>")
    with pytest.raises(SqsResponseError) as caught:
        parse_receive_response(text)
    assert (caught.value.code, caught.value.message) == (code, "no")
    assert (caught.value.needs_fresh_url, caught.value.queue_missing) == (refresh, missing)
    assert parse_error(text).code == code


@pytest.mark.parametrize(
    "text",
    ["", "not xml", "{\"Messages\": []}", "<html><body>proxy error</body></html>",
     f'<ReceiveMessageResponse xmlns="{NS}"><ReceiveMessageResult><Message><Body>x</Body></Message>'
     "</ReceiveMessageResult></ReceiveMessageResponse>"],
)
def test_anything_else_is_an_invalid_response(text: str) -> None:
    with pytest.raises(SqsResponseError) as caught:
        parse_receive_response(text)
    assert caught.value.code == "InvalidResponse"
