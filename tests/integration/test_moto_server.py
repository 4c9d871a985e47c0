"""The embedded AWS's server keeps connections open, and every request on one ends where it should.

Raw ``http.client`` connections show the framing: ``conn.sock`` stays the same socket only while the
server keeps the connection (http.client drops it on ``Connection: close``).
"""

from __future__ import annotations

import http.client
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from pbfm_tooling.local_stack import patch_moto_as_the_embedded_aws
from pbfm_tooling.moto_server import EmbeddedAwsServer
from tests.integration.moto_in_process import FAKE

BUCKET = "keep-alive"
BODY = b"the object, 33 bytes long, exact."


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedAwsServer]:
    patch_moto_as_the_embedded_aws()
    server = EmbeddedAwsServer("127.0.0.1", 0)
    server.start()
    s3 = boto3.client("s3", endpoint_url=_url(server), **FAKE)
    # Public, so unsigned raw requests are answered.
    s3.create_bucket(Bucket=BUCKET, ACL="public-read-write",
                     CreateBucketConfiguration={"LocationConstraint": FAKE["region_name"]})
    s3.put_object(Bucket=BUCKET, Key="object", Body=BODY, ACL="public-read")
    try:
        yield server
    finally:
        server.stop()


def _url(server: EmbeddedAwsServer) -> str:
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def _connect(server: EmbeddedAwsServer) -> http.client.HTTPConnection:
    host, port = server.get_host_and_port()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.connect()
    return connection


def _get_object(connection: http.client.HTTPConnection) -> tuple[int, bytes]:
    connection.request("GET", f"/{BUCKET}/object")
    answer = connection.getresponse()
    return answer.status, answer.read()


def test_one_client_s_calls_share_one_connection(server: EmbeddedAwsServer) -> None:
    # Counted from here: the fixture's own client keeps a connection of its own.
    sqs = boto3.client("sqs", endpoint_url=_url(server), **FAKE)
    before = server.open_connections
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for n in range(20):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{n}")
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10
    # werkzeug's server (moto's own) had closed each after its answer: 0 would stay open.
    assert server.open_connections == before + 1
    sqs.close()


def test_a_body_the_app_leaves_unread_does_not_become_the_next_request() -> None:
    # moto reads every body it gets; an app that does not shows the framing is the server's own.
    paths: list[str] = []

    def unread(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        paths.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    server = EmbeddedAwsServer("127.0.0.1", 0, app=unread)
    server.start()
    try:
        connection = _connect(server)
        sock = connection.sock
        connection.request("POST", "/first", body=b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        first = connection.getresponse()
        assert (first.status, first.read()) == (200, b"/first")
        connection.request("GET", "/second")
        second = connection.getresponse()
        assert (second.status, second.read()) == (200, b"/second")
        assert connection.sock is sock
        assert paths == ["/first", "/second"]
        connection.close()
    finally:
        server.stop()


def test_a_head_answer_tells_the_size_and_carries_no_body(server: EmbeddedAwsServer) -> None:
    connection = _connect(server)
    sock = connection.sock
    connection.request("HEAD", f"/{BUCKET}/object")
    head = connection.getresponse()
    assert (head.status, head.getheader("Content-Length"), head.read()) == (200, str(len(BODY)), b"")
    # Had a body followed, this answer's status line would be read out of it.
    assert _get_object(connection) == (200, BODY)
    assert connection.sock is sock
    connection.close()


def test_a_chunked_upload_is_read_to_its_last_chunk(server: EmbeddedAwsServer) -> None:
    connection = _connect(server)
    sock = connection.sock
    parts = [b"first part, ", b"second part, ", b"last part."]
    connection.request("PUT", f"/{BUCKET}/chunked", body=iter(parts), encode_chunked=True,
                       headers={"Transfer-Encoding": "chunked", "x-amz-acl": "public-read"})
    put = connection.getresponse()
    put.read()
    assert put.status == 200
    connection.request("GET", f"/{BUCKET}/chunked")
    got = connection.getresponse()
    assert (got.status, got.read()) == (200, b"".join(parts))
    assert connection.sock is sock
    connection.close()


def test_a_malformed_length_is_a_400_and_ends_the_connection(server: EmbeddedAwsServer) -> None:
    answer = _exchange(server, f"PUT /{BUCKET}/bad HTTP/1.1\r\nHost: x\r\nContent-Length: twelve\r\n\r\nhello")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"Connection: close" in answer


def test_a_body_cut_short_is_refused_not_acted_on() -> None:
    calls: list[str] = []

    def recording(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    server = EmbeddedAwsServer("127.0.0.1", 0, app=recording)
    server.start()
    try:
        answer = _exchange(server, "PUT /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part",
                           stop_sending=True)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert calls == []  # the app never saw part of a request
    finally:
        server.stop()


def test_a_malformed_chunk_is_a_400_and_ends_the_connection(server: EmbeddedAwsServer) -> None:
    answer = _exchange(server, f"PUT /{BUCKET}/bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "zz\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"Connection: close" in answer


def test_an_app_that_fails_gets_a_500_that_ends_the_connection() -> None:
    def failing(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("moto broke")

    server = EmbeddedAwsServer("127.0.0.1", 0, app=failing)
    server.start()
    try:
        answer = _exchange(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 500 "), answer
        assert b"Connection: close" in answer
    finally:
        server.stop()


def test_stop_ends_the_idle_connections_too() -> None:
    server = EmbeddedAwsServer("127.0.0.1", 0)
    server.start()
    connection = _connect(server)
    connection.request("GET", "/")  # S3's ListBuckets
    connection.getresponse().read()
    assert server.open_connections == 1
    sock = connection.sock
    assert sock is not None
    server.stop()
    # The stopped server's thread would otherwise go on answering on this connection.
    sock.settimeout(5)
    assert sock.recv(1) == b""
    connection.close()
    with pytest.raises(ConnectionRefusedError):
        _connect(server)


def _exchange(server: EmbeddedAwsServer, request: str, *, stop_sending: bool = False) -> bytes:
    """Sends raw bytes on a new connection; everything the server answers until it closes."""
    with socket.create_connection(server.get_host_and_port(), timeout=10) as raw:
        raw.sendall(request.encode())
        if stop_sending:
            raw.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := raw.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
