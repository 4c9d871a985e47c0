"""The AWS gateway in front of a real moto server, called by real boto3, httpx and Chromium.

What a browser gets (a presigned SQS receive, a presigned S3 read) works, and every way of bending
such a URL (another queue, another parameter, later, another key) is refused the way AWS refuses it.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from chalice_app.presign import presign_receive_message
from pbfm_tooling.local_stack import LOCAL_CREDENTIALS  # also sets MOTO_DISABLE_GLOBAL_CORS before moto loads
from web_py.sqs_xml import SqsResponseError, parse_error, parse_receive_response

from pbfm_tooling.moto_server import EmbeddedAwsServer  # isort: skip  (must come after local_stack)
from pbfm_tooling.aws_gateway import AwsGateway  # isort: skip

NS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
IN_SQS_NS = "{" + NS["sqs"] + "}"
REGION = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
KEY, SECRET, TOKEN = (LOCAL_CREDENTIALS[name] for name in
                      ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
PAGE_ORIGIN = "http://page.example"
BUCKET = "gateway-test-assets"


class Aws:
    """moto, the gateway in front of it, and boto3 clients on moto (the app's side)."""

    def __init__(self, moto_url: str, gateway: AwsGateway) -> None:
        self.moto_url = moto_url
        self.gateway = gateway
        session = boto3.session.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                                        aws_session_token=TOKEN, region_name=REGION)
        self.sqs = session.client("sqs", endpoint_url=moto_url)
        self.s3 = session.client("s3", endpoint_url=moto_url, config=Config(signature_version="s3v4"))
        # Presigns S3 reads against the gateway, as the app will (the host is signed).
        self.s3_public = session.client("s3", endpoint_url=gateway.url, config=Config(signature_version="s3v4"))
        self._count = 0
        self.page_origins = [PAGE_ORIGIN]

    def fifo_queue(self) -> str:
        self._count += 1
        name = f"gw-{time.monotonic_ns()}-{self._count}.fifo"
        return str(self.sqs.create_queue(QueueName=name, Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"])

    def send(self, queue_url: str, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageGroupId="session")

    def presign(self, queue_url: str, **options: Any) -> str:
        arguments: dict[str, Any] = {"access_key": KEY, "secret_key": SECRET, "session_token": TOKEN,
                                     "region": REGION, "endpoint": self.gateway.url, "wait_time_s": 0, **options}
        return presign_receive_message(queue_url, **arguments).url

    def visible_bodies(self, queue_url: str) -> list[str]:
        """What the queue still holds (received straight from moto, then made visible again)."""
        messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                            VisibilityTimeout=0).get("Messages", [])
        return [m["Body"] for m in messages]


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    moto = EmbeddedAwsServer("127.0.0.1", 0)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    gateway = AwsGateway(moto_url, access_key=KEY, secret_key=SECRET, session_token=TOKEN, region=REGION).start()
    try:
        yield Aws(moto_url, gateway)
    finally:
        gateway.stop()
        moto.stop()


@pytest.fixture(scope="module")
def bucket(aws: Aws) -> str:
    aws.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.s3.put_object(Bucket=BUCKET, Key="docs/quote.json", Body=b'{"price": "0.031"}',
                      ContentType="application/json")
    return BUCKET


def set_bucket_cors(aws: Aws, origins: list[str]) -> None:
    aws.s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": origins, "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"],
        "MaxAgeSeconds": 3600}]})


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=30)


def sqs_error(response: httpx.Response) -> tuple[str, str]:
    root = ET.fromstring(response.content)
    assert root.tag == IN_SQS_NS + "ErrorResponse", response.text
    assert root.findtext("sqs:Error/sqs:Type", namespaces=NS) == "Sender"
    assert root.findtext("sqs:RequestId", namespaces=NS)
    return root.findtext("sqs:Error/sqs:Code", namespaces=NS) or "", root.findtext(
        "sqs:Error/sqs:Message", namespaces=NS) or ""


def s3_error(response: httpx.Response) -> str:
    root = ET.fromstring(response.content)
    assert root.tag == "Error", response.text
    return root.findtext("Code") or ""


def received(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == IN_SQS_NS + "ReceiveMessageResponse"
    assert root.findtext("sqs:ResponseMetadata/sqs:RequestId", namespaces=NS)
    return [{child.tag.split("}")[1]: child.text or "" for child in message}
            for message in root.findall("sqs:ReceiveMessageResult/sqs:Message", NS)]


# -- SQS ---------------------------------------------------------------------------------------------


def test_a_presigned_receive_returns_the_messages_as_aws_query_api_xml(aws: Aws) -> None:
    queue = aws.fifo_queue()
    bodies = ['{"seq": 1, "note": "<b>&amp; \'quotes\" ü €"}', "two", "three"]
    aws.send(queue, *bodies)

    messages = received(get(aws.presign(queue, max_messages=10, visibility_timeout_s=30)))

    assert [m["Body"] for m in messages] == bodies
    for message in messages:
        assert message["MD5OfBody"] == hashlib.md5(message["Body"].encode()).hexdigest()
        assert message["MessageId"] and message["ReceiptHandle"]
    # The receipt handles are SQS's own: the app can delete with them.
    for message in messages:
        aws.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert aws.visible_bodies(queue) == []


def test_the_signed_parameters_are_the_ones_applied(aws: Aws) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, "a", "b", "c")
    first = received(get(aws.presign(queue, max_messages=2, visibility_timeout_s=60)))
    assert [m["Body"] for m in first] == ["a", "b"]
    # Their visibility timeout (60 s) hides them; the FIFO group stays blocked until they are deleted.
    assert received(get(aws.presign(queue, max_messages=10))) == []


def test_system_attributes_come_back_as_attribute_elements(aws: Aws) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, "with attributes")
    root = ET.fromstring(get(aws.presign(queue, system_attributes=["SentTimestamp", "MessageGroupId"])).content)
    attributes = {a.findtext("sqs:Name", namespaces=NS): a.findtext("sqs:Value", namespaces=NS)
                  for a in root.iterfind(".//sqs:Message/sqs:Attribute", NS)}
    assert attributes["MessageGroupId"] == "session"
    assert abs(int(attributes["SentTimestamp"]) / 1000 - time.time()) < 60


def test_a_long_poll_delivers_a_message_sent_during_the_wait(aws: Aws) -> None:
    queue = aws.fifo_queue()
    url = aws.presign(queue, wait_time_s=10)
    sender = threading.Timer(1.0, aws.send, args=(queue, "late"))
    started = time.monotonic()
    sender.start()
    try:
        messages = received(get(url))
    finally:
        sender.join()
    elapsed = time.monotonic() - started
    assert [m["Body"] for m in messages] == ["late"]
    assert 0.9 <= elapsed < 8, elapsed


def test_long_polls_run_in_parallel(aws: Aws) -> None:
    urls = [aws.presign(aws.fifo_queue(), wait_time_s=2) for _ in range(6)]
    started = time.monotonic()
    with ThreadPoolExecutor(len(urls)) as pool:
        results = list(pool.map(get, urls))
    elapsed = time.monotonic() - started
    assert all(received(r) == [] for r in results)
    assert 1.8 <= elapsed < 5, elapsed  # six 2-second waits at once, not one after another (12 s)


def test_the_url_reads_no_other_queue(aws: Aws) -> None:
    mine, theirs = aws.fifo_queue(), aws.fifo_queue()
    aws.send(theirs, "not yours")
    url = aws.presign(mine)
    bent = url.replace(urlsplit(mine).path, urlsplit(theirs).path)
    assert bent != url

    response = get(bent)
    assert response.status_code == 403
    assert sqs_error(response)[0] == "SignatureDoesNotMatch"
    assert aws.visible_bodies(theirs) == ["not yours"]


@pytest.mark.parametrize(("find", "replace"), [
    ("MaxNumberOfMessages=1", "MaxNumberOfMessages=10"),
    ("WaitTimeSeconds=0", "WaitTimeSeconds=20"),
    ("Action=ReceiveMessage", "Action=PurgeQueue"),
    ("X-Amz-Expires=900", "X-Amz-Expires=901"),
    ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host%3Borigin"),
])
def test_a_changed_parameter_breaks_the_signature(aws: Aws, find: str, replace: str) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, "kept")
    url = aws.presign(queue, max_messages=1)
    assert find in url
    response = get(url.replace(find, replace), Origin=PAGE_ORIGIN)
    assert response.status_code == 403
    assert sqs_error(response)[0] == "SignatureDoesNotMatch"
    assert aws.visible_bodies(queue) == ["kept"]


def test_an_added_parameter_breaks_the_signature(aws: Aws) -> None:
    queue = aws.fifo_queue()
    response = get(aws.presign(queue) + "&VisibilityTimeout=0")
    assert response.status_code == 403 and sqs_error(response)[0] == "SignatureDoesNotMatch"


@pytest.mark.parametrize(("signed_ago_s", "expires_s"), [(901, 900), (61, 60), (3600, 900)])
def test_an_expired_url_is_refused(aws: Aws, signed_ago_s: int, expires_s: int) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, "kept")
    url = aws.presign(queue, expires_s=expires_s, clock=lambda: time.time() - signed_ago_s)
    response = get(url)
    assert response.status_code == 403
    code, message = sqs_error(response)
    assert code == "SignatureDoesNotMatch" and message.startswith("Signature expired:"), message
    assert aws.visible_bodies(queue) == ["kept"]


def test_a_url_signed_in_the_future_is_refused(aws: Aws) -> None:
    response = get(aws.presign(aws.fifo_queue(), clock=lambda: time.time() + 3600))
    assert response.status_code == 403
    assert sqs_error(response)[1].startswith("Signature not yet current:")


def test_a_url_just_inside_its_lifetime_works(aws: Aws) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, "still fresh")
    url = aws.presign(queue, expires_s=60, clock=lambda: time.time() - 50)
    assert [m["Body"] for m in received(get(url))] == ["still fresh"]


@pytest.mark.parametrize(("credentials", "code"), [
    ({"secret_key": "not-the-secret"}, "SignatureDoesNotMatch"),
    ({"access_key": "AKIAUNKNOWN"}, "InvalidClientTokenId"),
    ({"session_token": "another-token"}, "InvalidClientTokenId"),
    ({"session_token": None}, "InvalidClientTokenId"),
    ({"region": "us-east-1"}, "SignatureDoesNotMatch"),
])
def test_a_url_signed_with_other_credentials_is_refused(aws: Aws, credentials: dict, code: str) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, "kept")
    response = get(aws.presign(queue, **credentials))
    assert response.status_code == 403
    assert sqs_error(response)[0] == code
    assert aws.visible_bodies(queue) == ["kept"]


def test_a_queue_that_does_not_exist_is_aws_nonexistentqueue(aws: Aws) -> None:
    missing = aws.moto_url + "/123456789012/no-such-queue.fifo"
    response = get(aws.presign(missing))
    assert response.status_code == 400
    assert sqs_error(response)[0] == "AWS.SimpleQueueService.NonExistentQueue"


def test_a_validly_signed_other_action_is_refused(aws: Aws) -> None:
    queue = aws.fifo_queue()
    request = AWSRequest(method="GET", url=aws.gateway.public_url(queue),
                         params={"Action": "DeleteQueue", "Version": "2012-11-05"})
    SigV4QueryAuth(Credentials(KEY, SECRET, TOKEN), "sqs", REGION, expires=60).add_auth(request)
    response = get(request.url)
    assert response.status_code == 400
    assert sqs_error(response)[0] == "InvalidAction"
    attributes = aws.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["FifoQueue"])["Attributes"]
    assert attributes["FifoQueue"] == "true"  # still there


def test_unsigned_and_foreign_scoped_requests_are_refused(aws: Aws, bucket: str) -> None:
    queue_path = urlsplit(aws.fifo_queue()).path
    unsigned = get(aws.gateway.url + queue_path + "?Action=ReceiveMessage&Version=2012-11-05")
    assert unsigned.status_code == 403 and sqs_error(unsigned)[0] == "MissingAuthenticationToken"

    anonymous_read = get(f"{aws.gateway.url}/{bucket}/docs/quote.json")
    assert anonymous_read.status_code == 403 and s3_error(anonymous_read) == "AccessDenied"

    foreign = aws.presign(aws.moto_url + queue_path).replace("%2Fsqs%2F", "%2Fdynamodb%2F")
    response = get(foreign)
    assert response.status_code == 403 and sqs_error(response)[0] == "SignatureDoesNotMatch"


def test_the_pages_own_reader_takes_the_gateways_answers(aws: Aws) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, '{"seq": 1}', "<&>")
    messages = parse_receive_response(get(aws.presign(queue)).text)
    assert [m.body for m in messages] == ['{"seq": 1}', "<&>"]

    expired = get(aws.presign(queue, expires_s=60, clock=lambda: time.time() - 120)).text
    with pytest.raises(SqsResponseError) as refused:
        parse_receive_response(expired)
    assert refused.value.needs_fresh_url
    missing = get(aws.presign(aws.moto_url + "/123456789012/gone.fifo")).text
    assert parse_error(missing).queue_missing


# -- S3 ----------------------------------------------------------------------------------------------


def test_a_presigned_s3_get_reads_the_object(aws: Aws, bucket: str) -> None:
    url = aws.s3_public.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "docs/quote.json"},
                                               ExpiresIn=60)
    response = get(url)
    assert response.status_code == 200
    assert response.content == b'{"price": "0.031"}'
    assert response.headers["content-type"] == "application/json"


def test_a_presigned_s3_url_with_its_key_swapped_is_refused(aws: Aws, bucket: str) -> None:
    aws.s3.put_object(Bucket=bucket, Key="docs/secret.json", Body=b"{}")
    url = aws.s3_public.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "docs/quote.json"})
    response = get(url.replace("docs/quote.json", "docs/secret.json"))
    assert response.status_code == 403
    assert s3_error(response) == "SignatureDoesNotMatch"


def test_an_expired_presigned_s3_url_is_refused(aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's S3 presigner reads the wall clock: sign as if two hours ago.
    two_hours_ago = datetime.fromtimestamp(time.time() - 7200, tz=UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: two_hours_ago)
    url = aws.s3_public.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "docs/quote.json"},
                                               ExpiresIn=3600)
    monkeypatch.undo()
    response = get(url)
    assert response.status_code == 403
    root = ET.fromstring(response.content)
    assert (root.findtext("Code"), root.findtext("Message")) == ("AccessDenied", "Request has expired")
    assert root.findtext("X-Amz-Expires") == "3600" and root.findtext("ServerTime")


def test_a_missing_object_is_s3s_own_404(aws: Aws, bucket: str) -> None:
    url = aws.s3_public.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "docs/none.json"})
    response = get(url)
    assert response.status_code == 404
    assert s3_error(response) == "NoSuchKey"


def test_a_boto3_client_signing_headers_goes_through_and_a_wrong_key_does_not(aws: Aws, bucket: str) -> None:
    body = aws.s3_public.get_object(Bucket=bucket, Key="docs/quote.json")["Body"].read()
    assert body == b'{"price": "0.031"}'
    assert aws.s3_public.head_object(Bucket=bucket, Key="docs/quote.json")["ContentLength"] == len(body)

    wrong = boto3.session.Session(aws_access_key_id=KEY, aws_secret_access_key="wrong", aws_session_token=TOKEN,
                                  region_name=REGION).client("s3", endpoint_url=aws.gateway.url)
    with pytest.raises(ClientError) as refused:
        wrong.get_object(Bucket=bucket, Key="docs/quote.json")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unknown = boto3.session.Session(aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key=SECRET,
                                    region_name=REGION).client("s3", endpoint_url=aws.gateway.url)
    with pytest.raises(ClientError) as refused:
        unknown.get_object(Bucket=bucket, Key="docs/quote.json")
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_s3_writes_are_not_served(aws: Aws, bucket: str) -> None:
    with pytest.raises(ClientError) as refused:
        aws.s3_public.put_object(Bucket=bucket, Key="docs/quote.json", Body=b"overwritten")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert aws.s3.get_object(Bucket=bucket, Key="docs/quote.json")["Body"].read() == b'{"price": "0.031"}'


# -- CORS --------------------------------------------------------------------------------------------


def test_sqs_answers_a_preflight_and_a_cross_origin_get(aws: Aws) -> None:
    queue = aws.fifo_queue()
    aws.send(queue, "cors")
    url = aws.presign(queue)
    preflight = httpx.options(url, headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "GET",
                                            "Access-Control-Request-Headers": "x-amz-user-agent"}, timeout=10)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    assert preflight.headers["access-control-allow-headers"] == "x-amz-user-agent"
    assert preflight.headers["access-control-max-age"] == "86400"

    response = get(url, Origin=PAGE_ORIGIN)
    assert response.headers["access-control-allow-origin"] == "*"
    assert [m["Body"] for m in received(response)] == ["cors"]
    # Errors too, so a page can read why it was refused.
    refused = get(url.replace("WaitTimeSeconds=0", "WaitTimeSeconds=1"), Origin=PAGE_ORIGIN)
    assert refused.status_code == 403 and refused.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in get(url).headers  # no Origin, no CORS headers


def test_s3_applies_the_buckets_own_cors_rules(aws: Aws, bucket: str) -> None:
    set_bucket_cors(aws, [PAGE_ORIGIN])
    url = aws.s3_public.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "docs/quote.json"})
    allowed = httpx.options(url, headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "GET"},
                            timeout=10)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == PAGE_ORIGIN
    other = httpx.options(url, headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
                          timeout=10)
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    assert get(url, Origin=PAGE_ORIGIN).headers["access-control-allow-origin"] == PAGE_ORIGIN


# -- a real browser -----------------------------------------------------------------------------------


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another origin</title><p>reader</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.browser
def test_chromium_reads_its_queue_and_a_document_cross_origin_through_the_gateway(aws: Aws, bucket: str) -> None:
    from tests.browser.harness import chromium

    page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    page_origin = f"http://127.0.0.1:{page_server.server_address[1]}"
    set_bucket_cors(aws, [page_origin])
    queue = aws.fifo_queue()
    receive_url = aws.presign(queue, wait_time_s=10)
    document_url = aws.s3_public.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "docs/quote.json"})
    bent_url = receive_url.replace("WaitTimeSeconds=10", "WaitTimeSeconds=1")
    assert urlsplit(receive_url).netloc != urlsplit(page_origin).netloc
    try:
        with chromium() as browsers:
            page = browsers.open(page_origin + "/")
            # The page's long poll is open before the message exists: it arrives during the wait.
            threading.Timer(1.0, aws.send, args=(queue, '{"seq": 7, "type": "PRICE_UPDATE"}')).start()
            result = page.evaluate("""async ([receive, doc, bent]) => {
                const r = await fetch(receive);
                const d = await fetch(doc);
                const b = await fetch(bent);
                return {status: r.status, xml: await r.text(), docStatus: d.status, doc: await d.text(),
                        bentStatus: b.status, bent: await b.text()};
            }""", [receive_url, document_url, bent_url])
            assert browsers.external_requests() == []
    finally:
        page_server.shutdown()
        page_server.server_close()

    assert result["status"] == 200
    root = ET.fromstring(result["xml"])
    bodies = [m.findtext("sqs:Body", namespaces=NS) for m in root.iterfind(".//sqs:Message", NS)]
    assert bodies == ['{"seq": 7, "type": "PRICE_UPDATE"}']
    assert (result["docStatus"], result["doc"]) == (200, '{"price": "0.031"}')
    assert result["bentStatus"] == 403 and "SignatureDoesNotMatch" in result["bent"]
