"""A thin gateway in front of moto's server: what a browser calls answers the way AWS would.

moto checks no signature and no expiry, routes a query-signed SQS request to its S3 backend, and
answers SQS's Query API in JSON. Browsers get presigned URLs and call AWS themselves, so the local
stack needs a front door that behaves like AWS on that path, and tests need it to prove the security
properties (a URL reads one queue with one set of parameters, until it expires) locally:

- **Routing** by the signed credential scope (``X-Amz-Credential`` in the query or the
  ``Authorization`` header): ``sqs`` or ``s3``. An unsigned request is refused (an S3 CORS preflight
  excepted); a scope naming another service gets SignatureDoesNotMatch "Credential should be scoped
  to correct service", as AWS answers it.
- **SigV4 verification**: the signature is recomputed with botocore's own signer from the incoming
  request (method, path, query minus ``X-Amz-Signature``, the signed headers, the same
  ``X-Amz-Date``) and compared with ``hmac.compare_digest``. Unknown access key, wrong session
  token, bad signature, wrong region, expired or not-yet-valid requests are refused in each
  service's own error format (S3: ``<Error>``; SQS: Query-API ``<ErrorResponse>``).
- **SQS**: a verified ``Action=ReceiveMessage`` (the only action browsers get) is run against moto
  with boto3 (the JSON protocol, which moto handles) and rendered as AWS's Query-API XML. Long polls
  run in parallel, one thread per request.
- **S3**: a verified GET/HEAD, and the unsigned CORS preflight, go to moto as they are; moto applies
  the bucket's own CORS rules (``MOTO_DISABLE_GLOBAL_CORS=true``, set by ``pbfm_tooling.local_stack``).

What AWS does, and where this gateway follows it (looked up 2026-12; no AWS account reachable here):
- SQS errors (the Query API): HTTP 403 ``<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>Signature expired: 20150619T100249Z
  is now earlier than 20150619T100713Z (20150619T102213Z - 15 min.)</Message><Detail/></Error>
  <RequestId>…</RequestId></ErrorResponse>`` — quoted in aws/aws-sdk-php#642 and celery/kombu#1937;
  so an expired SQS request is SignatureDoesNotMatch "Signature expired", not RequestExpired.
  Unknown key: 403 InvalidClientTokenId "The security token included in the request is invalid."
  (SQS API reference, Common Errors). Missing queue: 400 ``AWS.SimpleQueueService.NonExistentQueue``.
- SQS lifetime: SQS honours a query-signed request for ~15 minutes after ``X-Amz-Date`` and ignores
  ``X-Amz-Expires`` (aws/aws-sdk-ruby#2498). This gateway refuses an SQS request past the *earlier*
  of ``X-Amz-Date + X-Amz-Expires`` and ``X-Amz-Date + 15 min``: it never accepts what AWS would
  refuse, and it also enforces a shorter expiry, which AWS may not (so never rely on a short expiry
  alone for security on AWS).
- S3 errors: expired → 403 AccessDenied "Request has expired" with ``X-Amz-Expires``, ``Expires``,
  ``ServerTime`` (aws/aws-sdk-js#3493, versity/versitygw#2116); ``X-Amz-Expires`` over a week → 400
  AuthorizationQueryParametersError (minio/minio#5162, the message quoted there); unknown key → 403
  InvalidAccessKeyId; bad signature → 403 SignatureDoesNotMatch with ``StringToSign``,
  ``SignatureProvided`` and ``CanonicalRequest``; wrong session token → 400 InvalidToken.
- SQS and CORS: the AWS SDK for JavaScript marks SQS as CORS-enabled (its service table,
  ``apis/metadata.json``: ``"cors": true``), and browsers call it directly with the SDK, which sends
  POSTs with ``Authorization``/``X-Amz-*`` headers: so SQS answers preflights allowing those. The
  exact header values SQS sends could not be observed from here. **Assumed**: any origin is allowed
  with ``Access-Control-Allow-Origin: *`` (no credentials) on every response, errors included; a
  preflight gets 200 with ``Access-Control-Allow-Methods: GET, POST``, the requested headers echoed
  in ``Access-Control-Allow-Headers`` and ``Access-Control-Max-Age: 86400``; ``x-amzn-RequestId`` is
  exposed. A presigned GET without custom headers is a CORS "simple request": the browser sends no
  preflight at all, so only ``Access-Control-Allow-Origin`` on the GET itself matters for our page.
- S3 and CORS: the bucket's CORS rules (moto applies them to what it answers). Errors made by this
  gateway (signature, expiry) carry no CORS headers (assumed; a page sees them as failed fetches).
- Unsigned requests: S3 → 403 AccessDenied "Access Denied" (the bucket is private); SQS (a path
  shaped ``/<account>/<queue>``) → 403 MissingAuthenticationToken.
- Not done: chunked/streaming uploads, POST/PUT to S3, SQS actions other than ReceiveMessage (400
  InvalidAction, naming the limit), the JSON protocol through the gateway (callers with credentials
  talk to moto directly).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

SQS_NS = "http://queue.amazonaws.com/doc/2012-11-05/"
ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
MAX_PRESIGN_EXPIRES_S = 604_800  # SigV4: a week
SQS_SIGNATURE_LIFETIME_S = 900  # SQS honours a signed request ~15 minutes (see the module docstring)
CLOCK_SKEW_S = 900
MAX_BODY_BYTES = 1 << 20
SQS_PREFLIGHT_MAX_AGE_S = 86_400
SERVICES = ("sqs", "s3")
QUEUE_PATH = re.compile(r"^/[0-9]{1,12}/[A-Za-z0-9_.-]{1,80}$")
_AUTH_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length", "server", "date"})
# ReceiveMessage's Query-API parameters (list members are numbered: AttributeName.1, …).
_RECEIVE_SCALARS = {"MaxNumberOfMessages": int, "WaitTimeSeconds": int, "VisibilityTimeout": int,
                    "ReceiveRequestAttemptId": str}
_RECEIVE_LISTS = {"AttributeName": "AttributeNames", "MessageSystemAttributeName": "MessageSystemAttributeNames",
                  "MessageAttributeName": "MessageAttributeNames"}
_STANDARD_PARAMS = frozenset({"Action", "Version"})


# -- requests, responses and errors ---------------------------------------------------------------


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


@dataclass(frozen=True)
class SignedBy:
    """What a request claims about its signature (query or Authorization header)."""

    in_query: bool
    access_key: str
    scope_date: str
    region: str
    service: str
    amz_date: str
    signed_headers: str
    signature: str
    session_token: str | None
    expires_s: int | None  # query auth only


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


# -- signature verification (pure) ----------------------------------------------------------------


def read_signature(request: Incoming) -> SignedBy | None:
    """The signature a request claims, or None when it is unsigned; AwsError("malformed") otherwise."""
    query = dict(request.query)
    authorization = request.header("authorization")
    if "X-Amz-Credential" in query:
        if authorization:
            raise _malformed("only one auth mechanism allowed: the query or the Authorization header")
        for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                     "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"):
            if sum(1 for key, _ in request.query if key == name) > 1:
                raise _malformed(f"{name} appears more than once")
        missing = [name for name in ("X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                                     "X-Amz-Signature") if name not in query]
        if missing:
            raise _malformed(f"query-string authentication requires {', '.join(missing)}")
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise _malformed(f"X-Amz-Algorithm only supports {ALGORITHM!r}")
        try:
            expires = int(query["X-Amz-Expires"])
        except ValueError:
            raise _malformed("X-Amz-Expires should be a number") from None
        return _signed_by(True, query["X-Amz-Credential"], query["X-Amz-Date"], query["X-Amz-SignedHeaders"],
                          query["X-Amz-Signature"], query.get("X-Amz-Security-Token"), expires)
    if authorization:
        match = _AUTH_HEADER.match(authorization)
        if not match:
            raise _malformed("the Authorization header is not a SigV4 header")
        amz_date = request.header("x-amz-date")
        if not amz_date:
            raise _malformed("header authentication requires X-Amz-Date")
        return _signed_by(False, match["credential"], amz_date, match["signed"], match["signature"],
                          request.header("x-amz-security-token"), None)
    return None


def _signed_by(in_query: bool, credential: str, amz_date: str, signed_headers: str, signature: str,
               token: str | None, expires: int | None) -> SignedBy:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise _malformed(f"the credential {credential!r} is not <key>/<date>/<region>/<service>/aws4_request")
    return SignedBy(in_query, parts[0], parts[1], parts[2], parts[3], amz_date, signed_headers, signature,
                    token, expires)


class _Malformed(AwsError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "IncompleteSignature", message)


def _malformed(message: str) -> AwsError:
    return _Malformed(message)


@dataclass(frozen=True)
class Verifier:
    """Checks a request's SigV4 signature against the one key this local AWS accepts."""

    access_key: str
    secret_key: str
    session_token: str | None
    region: str
    clock: Callable[[], float] = time.time

    def verify(self, request: Incoming, signed: SignedBy, host: str) -> None:
        """Return when ``request`` is signed by our key and still valid; raise AwsError otherwise."""
        s3 = signed.service == "s3"
        if not hmac.compare_digest(signed.access_key.encode(), self.access_key.encode()):
            if s3:
                raise AwsError(403, "InvalidAccessKeyId",
                               "The AWS Access Key Id you provided does not exist in our records.",
                               {"AWSAccessKeyId": signed.access_key})
            raise AwsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if self.session_token is not None and not hmac.compare_digest(
                (signed.session_token or "").encode(), self.session_token.encode()):
            if s3:
                raise AwsError(400, "InvalidToken", "The provided token is malformed or otherwise invalid.")
            raise AwsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if signed.region != self.region:
            if s3:
                where = "X-Amz-Credential parameter" if signed.in_query else "Authorization header"
                raise AwsError(400, "AuthorizationQueryParametersError" if signed.in_query
                               else "AuthorizationHeaderMalformed",
                               f"Error parsing the {where}; the region '{signed.region}' is wrong; "
                               f"expecting '{self.region}'", {"Region": self.region})
            raise AwsError(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region. ")
        self._check_time(signed)
        canonical, string_to_sign, expected = self._expected_signature(request, signed, host)
        if not hmac.compare_digest(expected.encode(), signed.signature.lower().encode()):
            if s3:
                raise AwsError(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature you provided. "
                               "Check your key and signing method.",
                               {"AWSAccessKeyId": signed.access_key, "StringToSign": string_to_sign,
                                "SignatureProvided": signed.signature, "CanonicalRequest": canonical})
            raise AwsError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method. "
                           "Consult the service documentation for details.")

    def _check_time(self, signed: SignedBy) -> None:
        s3 = signed.service == "s3"
        try:
            signed_at = datetime.strptime(signed.amz_date, AMZ_DATE).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise _Malformed(f"X-Amz-Date must be in the ISO8601 Long Format yyyyMMdd'T'HHmmss'Z': "
                             f"{signed.amz_date!r}") from None
        if signed.scope_date != signed.amz_date[:8]:
            raise AwsError(403, "SignatureDoesNotMatch",
                           f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                           f"from HTTP: '{signed.scope_date}' != '{signed.amz_date[:8]}'")
        now = int(self.clock())
        if signed.expires_s is not None and not 1 <= signed.expires_s <= MAX_PRESIGN_EXPIRES_S:
            if s3:
                raise AwsError(400, "AuthorizationQueryParametersError",
                               "X-Amz-Expires must be less than a week (in seconds); that is, the given "
                               "X-Amz-Expires must be less than 604800 seconds")
            raise AwsError(400, "InvalidQueryParameter",
                           f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES_S} seconds")
        if signed_at > now + CLOCK_SKEW_S:
            if s3:
                raise AwsError(403, "AccessDenied", "Request is not valid yet")
            raise AwsError(403, "SignatureDoesNotMatch",
                           f"Signature not yet current: {signed.amz_date} is still later than "
                           f"{_amz(now + CLOCK_SKEW_S)} ({_amz(now)} + 15 min.)")
        if signed.expires_s is None:
            lifetime, what = CLOCK_SKEW_S, "15 min."
        elif s3:
            lifetime, what = signed.expires_s, f"{signed.expires_s} sec."
        else:
            lifetime = min(signed.expires_s, SQS_SIGNATURE_LIFETIME_S)
            what = "15 min." if lifetime == SQS_SIGNATURE_LIFETIME_S else f"{lifetime} sec."
        if now > signed_at + lifetime:
            if s3 and signed.in_query:
                raise AwsError(403, "AccessDenied", "Request has expired",
                               {"X-Amz-Expires": str(signed.expires_s), "Expires": _iso(signed_at + lifetime),
                                "ServerTime": _iso(now)})
            if s3:
                raise AwsError(403, "RequestTimeTooSkewed",
                               "The difference between the request time and the current time is too large.",
                               {"RequestTime": signed.amz_date, "ServerTime": _iso(now)})
            raise AwsError(403, "SignatureDoesNotMatch",
                           f"Signature expired: {signed.amz_date} is now earlier than "
                           f"{_amz(now - lifetime)} ({_amz(now)} - {what})")

    def _expected_signature(self, request: Incoming, signed: SignedBy, host: str) -> tuple[str, str, str]:
        """botocore's canonical request, string to sign and signature for what was received."""
        signer_class: Any
        if signed.in_query:
            signer_class = S3SigV4QueryAuth if signed.service == "s3" else SigV4QueryAuth
        else:
            signer_class = S3SigV4Auth if signed.service == "s3" else SigV4Auth
        signer = signer_class(Credentials(self.access_key, self.secret_key, self.session_token),
                              signed.service, signed.region)
        names = [name for name in signed.signed_headers.lower().split(";") if name]
        if "host" not in names:
            raise _malformed("the host header must be signed")
        headers = {name: host if name == "host" else request.headers.get(name, "") for name in names}
        aws_request = AWSRequest(method=request.method, url=f"http://{host}{request.path}", headers=headers,
                                 data=request.body or None)
        # Canonicalised from the decoded pairs, as AWS does: a client may have percent-encoded differently.
        aws_request.params = [(key, value) for key, value in request.query if key != "X-Amz-Signature"]
        aws_request.context["timestamp"] = signed.amz_date
        if not signed.in_query and signed.service == "s3":
            claimed = request.header("x-amz-content-sha256") or ""
            if re.fullmatch(r"[0-9a-f]{64}", claimed) and claimed != hashlib.sha256(request.body).hexdigest():
                raise AwsError(400, "XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what was computed.")
        canonical = signer.canonical_request(aws_request)
        if canonical.split("\n")[-2] != signed.signed_headers.lower():
            # A header botocore never signs (user-agent, expect, …) was named: we cannot reproduce it.
            raise AwsError(403, "SignatureDoesNotMatch", f"unsupported signed headers {signed.signed_headers!r}")
        string_to_sign = signer.string_to_sign(aws_request, canonical)
        return canonical, string_to_sign, str(signer.signature(string_to_sign, aws_request))


def _amz(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime(AMZ_DATE)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the gateway -----------------------------------------------------------------------------------


class AwsGateway:
    """A threaded HTTP server on its own port: SQS ReceiveMessage and S3 reads, checked like AWS.

    ``moto_url`` is moto's server; ``access_key``/``secret_key``/``session_token`` the one set of
    credentials it accepts (the local stack's); ``region`` the only region it serves.
    """

    def __init__(self, moto_url: str, *, access_key: str, secret_key: str, session_token: str | None,
                 region: str, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.moto_url = moto_url.rstrip("/")
        self.verifier = Verifier(access_key, secret_key, session_token, region, clock)
        self.region = region
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sqs = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, aws_session_token=session_token,
            region_name=region,
        ).client("sqs", endpoint_url=self.moto_url, config=Config(
            max_pool_connections=64, read_timeout=30, connect_timeout=5,
            retries={"total_max_attempts": 1},
        ))

    # -- lifecycle

    def start(self) -> AwsGateway:
        gateway = self

        class Handler(_Handler):
            owner = gateway

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AwsGateway:
        return self if self._server is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The public endpoint: what the app presigns against (the host is signed)."""
        return f"http://{self._host}:{self._port}"

    def public_url(self, moto_resource_url: str) -> str:
        """The same resource (a queue URL moto gave, say) on the gateway's host."""
        parts = urlsplit(moto_resource_url)
        return self.url + parts.path + (f"?{parts.query}" if parts.query else "")

    # -- dispatch (called on the request's own thread)

    def answer(self, request: Incoming) -> Outgoing:
        request_id = str(uuid.uuid4())
        sqs_shaped = bool(QUEUE_PATH.match(request.path))
        service = "sqs" if sqs_shaped else "s3"
        try:
            if request.method == "OPTIONS":
                return self._sqs_preflight(request) if sqs_shaped else self._forward_to_moto(request)
            try:
                signed = read_signature(request)
            except _Malformed as exc:
                if sqs_shaped:
                    raise
                raise _s3_malformed(exc, "X-Amz-Credential" in dict(request.query)) from None
            if signed is None:
                if sqs_shaped:
                    raise AwsError(403, "MissingAuthenticationToken", "The request must contain either a valid "
                                   "(registered) AWS access key ID or X.509 certificate.")
                raise AwsError(403, "AccessDenied", "Access Denied")
            if signed.service not in SERVICES:
                raise AwsError(403, "SignatureDoesNotMatch", f"Credential should be scoped to correct service: "
                               f"'{service}'. ")
            service = signed.service
            host = request.header("host")
            if not host:
                raise AwsError(400, "InvalidHttpRequest", "the Host header is required")
            try:
                self.verifier.verify(request, signed, host)
            except _Malformed as exc:
                raise (_s3_malformed(exc, signed.in_query) if service == "s3" else exc) from None
            if service == "sqs":
                return self._receive_message(request, request_id)
            if request.method not in ("GET", "HEAD"):
                raise AwsError(405, "MethodNotAllowed", "The specified method is not allowed against this "
                               "resource (this local gateway serves S3 reads only).")
            return self._forward_to_moto(request)
        except AwsError as error:
            return self._error(service, error, request_id, request)

    def _error(self, service: str, error: AwsError, request_id: str, request: Incoming) -> Outgoing:
        if service == "s3":
            return Outgoing(error.status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)],
                            s3_error_xml(error, request_id) if request.method != "HEAD" else b"")
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id), *_sqs_cors(request)]
        return Outgoing(error.status, headers, sqs_error_xml(error, request_id))

    # -- SQS

    def _sqs_preflight(self, request: Incoming) -> Outgoing:
        headers = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, POST"),
                   ("Access-Control-Max-Age", str(SQS_PREFLIGHT_MAX_AGE_S))]
        requested = request.header("access-control-request-headers")
        if requested:
            headers.append(("Access-Control-Allow-Headers", requested))
        return Outgoing(200, [*headers, ("Content-Length", "0")])

    def _receive_message(self, request: Incoming, request_id: str) -> Outgoing:
        params = list(request.query)
        if request.method == "POST" and (request.header("content-type") or "").startswith(
                "application/x-www-form-urlencoded"):
            params += _decode_pairs(request.body.decode("utf-8", "replace"))
        elif request.method != "GET":
            raise AwsError(400, "InvalidHttpRequest", "this local gateway serves SQS's Query API over GET (or a "
                           "form-encoded POST) only")
        operation = [(key, value) for key, value in params if not key.startswith("X-Amz-")]
        action = dict(operation).get("Action")
        if action != "ReceiveMessage":
            raise AwsError(400, "InvalidAction", f"The action {action} is not valid for this endpoint "
                           "(this local gateway serves ReceiveMessage only).")
        arguments = _receive_arguments(operation)
        arguments["QueueUrl"] = self.moto_url + request.path
        try:
            response = self._sqs.receive_message(**arguments)
        except ClientError as exc:
            raise _from_moto(exc) from None
        except ParamValidationError as exc:
            raise AwsError(400, "InvalidParameterValue", str(exc)) from None
        except BotoCoreError as exc:
            raise AwsError(500, "InternalError", f"the local SQS did not answer: {exc}", sender=False) from None
        body = receive_message_xml(response.get("Messages", []), request_id)
        return Outgoing(200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id), *_sqs_cors(request)],
                        body)

    # -- S3

    def _forward_to_moto(self, request: Incoming) -> Outgoing:
        moto = urlsplit(self.moto_url)
        connection = http.client.HTTPConnection(moto.hostname or "127.0.0.1", moto.port, timeout=30)
        headers = {name: value for name, value in request.headers.items() if name not in _HOP_BY_HOP}
        target = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        connection.request(request.method, target, body=request.body or None, headers=headers)
        upstream = connection.getresponse()
        out_headers = [(name, value) for name, value in upstream.getheaders() if name.lower() not in _HOP_BY_HOP]
        length = upstream.getheader("content-length")
        if request.method == "HEAD" or upstream.status in (204, 304):
            connection.close()
            return Outgoing(upstream.status, [*out_headers, *([("Content-Length", length)] if length else [])])
        if length is None:
            data = upstream.read()
            connection.close()
            return Outgoing(upstream.status, [*out_headers, ("Content-Length", str(len(data)))], data)
        return Outgoing(upstream.status, [*out_headers, ("Content-Length", length)], _stream(upstream, connection))


def _stream(upstream: http.client.HTTPResponse, connection: http.client.HTTPConnection) -> Iterator[bytes]:
    try:
        while chunk := upstream.read(64 * 1024):
            yield chunk
    finally:
        connection.close()


def _sqs_cors(request: Incoming) -> list[tuple[str, str]]:
    if not request.header("origin"):
        return []
    return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "x-amzn-RequestId")]


def _s3_malformed(error: AwsError, in_query: bool) -> AwsError:
    code = "AuthorizationQueryParametersError" if in_query else "AuthorizationHeaderMalformed"
    return AwsError(400, code, error.message)


def _from_moto(exc: ClientError) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "InternalError")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
    if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        return AwsError(400, "AWS.SimpleQueueService.NonExistentQueue",
                        "The specified queue does not exist for this wsdl version.")
    return AwsError(status, code, str(error.get("Message") or code), sender=status < 500)


def _receive_arguments(operation: list[tuple[str, str]]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    lists: dict[str, list[tuple[int, str]]] = {}
    for key, value in operation:
        if key in _STANDARD_PARAMS:
            continue
        if key in _RECEIVE_SCALARS:
            kind = _RECEIVE_SCALARS[key]
            try:
                arguments[key] = kind(value)
            except ValueError:
                raise AwsError(400, "InvalidParameterValue",
                               f"Value ({value}) for parameter {key} is invalid.") from None
            continue
        name, _, index = key.rpartition(".")
        if name in _RECEIVE_LISTS and index.isdigit():
            lists.setdefault(_RECEIVE_LISTS[name], []).append((int(index), value))
            continue
        raise AwsError(400, "InvalidQueryParameter", f"The query parameter {key!r} is not valid for ReceiveMessage.")
    for name, members in lists.items():
        arguments[name] = [value for _, value in sorted(members)]
    return arguments


def _decode_pairs(raw: str) -> list[tuple[str, str]]:
    """Query pairs, percent-decoded; '+' stays '+' (SigV4 encodes a space as %20)."""
    pairs = []
    for part in raw.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


class _Handler(BaseHTTPRequestHandler):
    owner: AwsGateway
    protocol_version = "HTTP/1.1"
    # Headers and body go in two send()s: without this, Nagle and the client's delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        path, _, raw_query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        request = Incoming(method=self.command, path=path or "/", query=_decode_pairs(raw_query),
                           headers={name.lower(): value for name, value in self.headers.items()},
                           body=body, raw_query=raw_query)
        try:
            response = self.owner.answer(request)
        except Exception as exc:  # an upstream failure: answer like AWS's 500, never drop the connection
            response = Outgoing(500, [("Content-Type", "text/plain")], f"InternalError: {exc}".encode())
        payload = response.body
        if isinstance(payload, bytes):
            names = {name.lower() for name, _ in response.headers}
            if "content-length" not in names:
                response.headers.append(("Content-Length", str(len(payload))))
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                for chunk in [payload] if isinstance(payload, bytes) else payload:
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            # A page closed during its long poll: nobody is left to answer.
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


