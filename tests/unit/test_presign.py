"""Presigned SQS ReceiveMessage URLs: botocore's signature, our parameters, our clock."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chalice_app.presign import MAX_EXPIRES_S, presign_receive_message

QUEUE = "http://127.0.0.1:5000/123456789012/pb-fm-webpage-session-s1-browser-abc.fifo"
T0 = 1_764_600_000  # 2025-12-01T14:40:00Z
KEYS = {"access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "session_token": "token/with+chars=", "region": "us-west-1"}


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_url_is_exactly_what_botocores_own_signer_makes_at_that_time(monkeypatch: pytest.MonkeyPatch) -> None:
    presigned = presign_receive_message(QUEUE, **KEYS, wait_time_s=20, max_messages=10, visibility_timeout_s=30,
                                        expires_s=600, clock=lambda: T0)

    # The reference: botocore's unmodified SigV4QueryAuth.add_auth, its wall clock pinned to T0.
    at = datetime.fromtimestamp(T0, tz=UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: at)
    reference = AWSRequest(method="GET", url=QUEUE, params={
        "Action": "ReceiveMessage", "Version": "2012-11-05", "MaxNumberOfMessages": "10",
        "WaitTimeSeconds": "20", "VisibilityTimeout": "30"})
    SigV4QueryAuth(Credentials(KEYS["access_key"], KEYS["secret_key"], KEYS["session_token"]), "sqs",
                   "us-west-1", expires=600).add_auth(reference)

    assert presigned.url == reference.url
    assert presigned.expires_at == T0 + 600


def test_url_names_one_queue_its_parameters_and_its_credentials() -> None:
    presigned = presign_receive_message(QUEUE, **KEYS, wait_time_s=5, max_messages=3, clock=lambda: T0)
    parts = urlsplit(presigned.url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:5000",
                                                        "/123456789012/pb-fm-webpage-session-s1-browser-abc.fifo")
    params = query(presigned.url)
    assert params["Action"] == "ReceiveMessage" and params["Version"] == "2012-11-05"
    assert params["WaitTimeSeconds"] == "5" and params["MaxNumberOfMessages"] == "3"
    assert "VisibilityTimeout" not in params
    assert params["X-Amz-Credential"] == "AKIDEXAMPLE/20251201/us-west-1/sqs/aws4_request"
    assert params["X-Amz-Date"] == "20251201T144000Z"
    assert params["X-Amz-Expires"] == str(MAX_EXPIRES_S)
    assert params["X-Amz-SignedHeaders"] == "host"
    # Lambda's role credentials only work with their token: it must travel, signed, in the URL.
    assert params["X-Amz-Security-Token"] == KEYS["session_token"]
    assert len(params["X-Amz-Signature"]) == 64


def test_without_a_session_token_none_is_sent() -> None:
    presigned = presign_receive_message(QUEUE, **{**KEYS, "session_token": None}, clock=lambda: T0)
    assert "X-Amz-Security-Token" not in query(presigned.url)


def test_the_signature_depends_on_time_host_secret_and_parameters() -> None:
    def signature(**changes: object) -> str:
        arguments: dict = {**KEYS, "clock": lambda: T0, **changes}
        return query(presign_receive_message(QUEUE, **arguments).url)["X-Amz-Signature"]

    base = signature()
    assert signature() == base  # deterministic
    assert signature(clock=lambda: T0 + 1) != base
    assert signature(endpoint="http://127.0.0.1:5001") != base
    assert signature(secret_key="another-secret") != base
    assert signature(max_messages=9) != base
    assert signature(session_token="other-token") != base


def test_endpoint_replaces_the_queue_urls_origin_before_signing() -> None:
    presigned = presign_receive_message(QUEUE, **KEYS, endpoint="https://gateway.local:8443", clock=lambda: T0)
    parts = urlsplit(presigned.url)
    assert (parts.scheme, parts.netloc) == ("https", "gateway.local:8443")
    assert parts.path == urlsplit(QUEUE).path


def test_system_attributes_are_numbered_query_members() -> None:
    presigned = presign_receive_message(QUEUE, **KEYS, system_attributes=["SentTimestamp", "SequenceNumber"],
                                        clock=lambda: T0)
    params = query(presigned.url)
    assert params["MessageSystemAttributeName.1"] == "SentTimestamp"
    assert params["MessageSystemAttributeName.2"] == "SequenceNumber"


@pytest.mark.parametrize("changes", [
    {"wait_time_s": 21}, {"wait_time_s": -1}, {"max_messages": 0}, {"max_messages": 11},
    {"expires_s": 0}, {"expires_s": MAX_EXPIRES_S + 1}, {"visibility_timeout_s": -1},
    {"visibility_timeout_s": 43_201}, {"max_messages": True}, {"wait_time_s": "20"},
    {"system_attributes": ["Body"]}, {"access_key": ""}, {"endpoint": "http://host/with/path"},
    {"endpoint": "ftp://host"},
])
def test_out_of_range_arguments_are_refused(changes: dict) -> None:
    with pytest.raises(ValueError):
        presign_receive_message(QUEUE, **{**KEYS, **changes}, clock=lambda: T0)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5000/", "http://127.0.0.1:5000/123456789012", "http://127.0.0.1:5000/acct/queue",
    "http://127.0.0.1:5000/123456789012/q?Action=DeleteQueue", "file:///123456789012/q",
    "http://127.0.0.1:5000/123456789012/q/../other", "http://127.0.0.1:5000/123456789012/" + "q" * 81,
])
def test_only_queue_urls_are_signed(url: str) -> None:
    with pytest.raises(ValueError):
        presign_receive_message(url, **KEYS, clock=lambda: T0)
