"""SigV4 checks: presigned URLs verify until they expire; anything bent, or malformed, is refused."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chalice_app.presign import presign_receive_message
from pbfm_tooling.aws_sigv4 import Verifier, read_signature
from pbfm_tooling.aws_wire import AwsError, Incoming, decode_query

T0 = 1_764_600_000
HOST = "127.0.0.1:4566"
QUEUE = f"http://{HOST}/123456789012/q.fifo"


def incoming(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Incoming:
    parts = urlsplit(url)
    return Incoming(method=method, path=parts.path, query=decode_query(parts.query),
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


def test_an_s3_url_valid_for_more_than_a_week_is_refused_as_s3_does() -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/bucket/key.json")
    S3SigV4QueryAuth(Credentials("key", "secret", "token"), "s3", "us-west-1", expires=604_801).add_auth(request)
    received = incoming(request.url)
    signed = read_signature(received)
    assert signed is not None and signed.service == "s3"
    with pytest.raises(AwsError) as refused:
        verifier(now=signed_at(signed.amz_date)).verify(received, signed, HOST)
    assert (refused.value.status, refused.value.code) == (400, "AuthorizationQueryParametersError")


def signed_at(amz_date: str) -> float:
    from datetime import UTC, datetime

    return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
