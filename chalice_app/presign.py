"""Presigned SQS ``ReceiveMessage`` URLs, so a browser reads its own queue directly.

A browser cannot sign AWS requests (it must never hold our credentials), but it can replay a URL we
signed for it: a GET on SQS's Query API, ``<queue-url>?Action=ReceiveMessage&Version=2012-11-05&…``,
with SigV4 *query* authentication. The signature covers the method, the host, the queue's path and
every query parameter, so the URL reads exactly one queue with exactly the parameters chosen here;
changing any of them breaks the signature. boto3's ``generate_presigned_url`` cannot make this URL:
botocore speaks SQS's JSON protocol, whose requests need an ``X-Amz-Target`` header a URL cannot carry.

The signing is botocore's own (``SigV4QueryAuth``); only the signing time comes from our clock, so
tests can make URLs that are already expired. Pure: no network, no boto3 client.

Lifetime: SQS honours a query-signed request for about 15 minutes after its ``X-Amz-Date``, whatever
its ``X-Amz-Expires`` says (reported in aws/aws-sdk-ruby#2498: a 1-day URL died after 15 minutes, a
10-second one lived 15 minutes). So ``expires_s`` is capped at 900: within that bound the URL is
valid at least until ``expires_at`` on AWS, and exactly until then on the local gateway. Temporary
credentials (a Lambda role's) also end a URL when they expire; their session token is signed into it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SQS_API_VERSION = "2012-11-05"
MAX_EXPIRES_S = 900
MAX_WAIT_S = 20
MAX_MESSAGES = 10
MAX_VISIBILITY_TIMEOUT_S = 43_200
# Attributes SQS can return with each message (AttributeName / MessageSystemAttributeName).
SYSTEM_ATTRIBUTES = frozenset({
    "All", "SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
    "SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader", "DeadLetterQueueSourceArn",
})
# A queue URL's path is /<account id>/<queue name>.
_QUEUE_PATH = re.compile(r"^/[0-9]{1,12}/(?:[A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)$")


@dataclass(frozen=True)
class PresignedReceive:
    url: str
    expires_at: int  # epoch seconds: the URL is refused from then on


def presign_receive_message(
    queue_url: str,
    *,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    region: str,
    wait_time_s: int = MAX_WAIT_S,
    max_messages: int = MAX_MESSAGES,
    visibility_timeout_s: int | None = None,
    system_attributes: Sequence[str] = (),
    expires_s: int = MAX_EXPIRES_S,
    endpoint: str | None = None,
    clock: Callable[[], float] = time.time,
) -> PresignedReceive:
    """A GET URL that receives from ``queue_url`` only, with these parameters only, until ``expires_at``.

    ``endpoint`` (``scheme://host[:port]``) replaces the queue URL's own origin before signing: the
    host is signed, so the URL must name the host the browser will call (locally, the AWS gateway in
    front of moto; on AWS, the queue URL as SQS gave it, so no endpoint).
    """
    url = _with_endpoint(queue_url, endpoint)
    _check_range("wait_time_s", wait_time_s, 0, MAX_WAIT_S)
    _check_range("max_messages", max_messages, 1, MAX_MESSAGES)
    _check_range("expires_s", expires_s, 1, MAX_EXPIRES_S)
    params: dict[str, str] = {
        "Action": "ReceiveMessage",
        "Version": SQS_API_VERSION,
        "MaxNumberOfMessages": str(max_messages),
        "WaitTimeSeconds": str(wait_time_s),
    }
    if visibility_timeout_s is not None:
        _check_range("visibility_timeout_s", visibility_timeout_s, 0, MAX_VISIBILITY_TIMEOUT_S)
        params["VisibilityTimeout"] = str(visibility_timeout_s)
    for index, name in enumerate(system_attributes, start=1):
        if name not in SYSTEM_ATTRIBUTES:
            raise ValueError(f"unknown message system attribute {name!r}; one of {sorted(SYSTEM_ATTRIBUTES)}")
        params[f"MessageSystemAttributeName.{index}"] = name
    if not (access_key and secret_key and region):
        raise ValueError("access_key, secret_key and region are required")

    signed_second = int(clock())  # one reading: the signature's time and the expiry must agree
    signed_at = datetime.fromtimestamp(signed_second, tz=UTC).replace(tzinfo=None)
    request = AWSRequest(method="GET", url=url, params=params)
    signer = _SigV4QueryAuthAt(Credentials(access_key, secret_key, session_token or None), "sqs", region,
                               expires=expires_s, signed_at=signed_at)
    signer.add_auth(request)
    return PresignedReceive(url=str(request.url), expires_at=signed_second + expires_s)


class _SigV4QueryAuthAt(SigV4QueryAuth):
    """botocore's query signer, signing at a given time instead of the wall clock's."""

    def __init__(self, credentials: Credentials, service_name: str, region_name: str, *, expires: int,
                 signed_at: datetime) -> None:
        super().__init__(credentials, service_name, region_name, expires=expires)
        self._signed_at = signed_at

    def add_auth(self, request: AWSRequest) -> None:
        # SigV4Auth.add_auth, step for step, with our timestamp.
        request.context["timestamp"] = self._signed_at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


def _with_endpoint(queue_url: str, endpoint: str | None) -> str:
    parts = urlsplit(queue_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"not a queue URL: {queue_url!r}")
    if not _QUEUE_PATH.match(parts.path):
        raise ValueError(f"not a queue URL (path must be /<account>/<queue name>): {queue_url!r}")
    if endpoint is None:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    origin = urlsplit(endpoint)
    if origin.scheme not in ("http", "https") or not origin.netloc or origin.path not in ("", "/"):
        raise ValueError(f"endpoint must be scheme://host[:port]: {endpoint!r}")
    return urlunsplit((origin.scheme, origin.netloc, parts.path, "", ""))


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, not {value!r}")
