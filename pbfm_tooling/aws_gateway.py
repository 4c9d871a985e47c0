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
- Modules: ``aws_sigv4`` (the verification, pure), ``aws_wire`` (the XML of both services), this
  one (the server, the routing, the calls to moto).
- Not done: chunked/streaming uploads, POST/PUT to S3, SQS actions other than ReceiveMessage (400
  InvalidAction, naming the limit), the JSON protocol through the gateway (callers with credentials
  talk to moto directly).
"""

from __future__ import annotations

import http.client
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from chalice_app.aws import service_client
from pbfm_tooling.aws_sigv4 import Malformed, Verifier, read_signature
from pbfm_tooling.aws_wire import (
    AwsError,
    Incoming,
    Outgoing,
    decode_query,
    receive_message_xml,
    s3_error_xml,
    sqs_error_xml,
)

MAX_BODY_BYTES = 1 << 20
SQS_PREFLIGHT_MAX_AGE_S = 86_400
SERVICES = ("sqs", "s3")
QUEUE_PATH = re.compile(r"^/[0-9]{1,12}/[A-Za-z0-9_.-]{1,80}$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length", "server", "date"})
# ReceiveMessage's Query-API parameters (list members are numbered: AttributeName.1, …).
_RECEIVE_SCALARS = {"MaxNumberOfMessages": int, "WaitTimeSeconds": int, "VisibilityTimeout": int,
                    "ReceiveRequestAttemptId": str}
_RECEIVE_LISTS = {"AttributeName": "AttributeNames", "MessageSystemAttributeName": "MessageSystemAttributeNames",
                  "MessageAttributeName": "MessageAttributeNames"}
_STANDARD_PARAMS = frozenset({"Action", "Version"})


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
        # Requests answered, by service ("sqs", "s3"): the bench's cost model counts them.
        self.requests: Counter[str] = Counter()
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sqs = service_client("sqs", region, endpoint_url=self.moto_url, config=Config(
            max_pool_connections=64, read_timeout=30, connect_timeout=5,
            retries={"total_max_attempts": 1},
        ), access_key=access_key, secret_key=secret_key, session_token=session_token)

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
        self.requests[service] += 1
        try:
            if request.method == "OPTIONS":
                return self._sqs_preflight(request) if sqs_shaped else self._forward_to_moto(request)
            try:
                signed = read_signature(request)
            except Malformed as exc:
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
            except Malformed as exc:
                raise (_s3_malformed(exc, signed.in_query) if service == "s3" else exc) from None
            if service == "sqs":
                if not sqs_shaped:
                    raise AwsError(404, "InvalidAddress", f"The address {request.path} is not valid for this "
                                   "endpoint (a queue URL's path is /<account id>/<queue name>).")
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
            params += decode_query(request.body.decode("utf-8", "replace"))
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


class _Handler(BaseHTTPRequestHandler):
    owner: AwsGateway
    protocol_version = "HTTP/1.1"
    # Headers and body go in two send()s: without this, Nagle and the client's delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        path, _, raw_query = self.path.partition("?")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            # The body is left unread: this connection cannot carry another request.
            self.close_connection = True
            self.send_error(413 if length > 0 else 400)
            return
        body = self.rfile.read(length) if length else b""
        request = Incoming(method=self.command, path=path or "/", query=decode_query(raw_query),
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

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            # A page dropped its connection (a cut or abandoned long-poll): nothing to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


