"""A moto server in this process, for the tests of our patches to moto (they patch this process's moto)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pbfm_tooling.moto_server import EmbeddedAwsServer

FAKE = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-west-1"}


@contextmanager
def moto_server() -> Iterator[str]:
    """The endpoint of a moto server running in this process while the block runs."""
    server = EmbeddedAwsServer("127.0.0.1", 0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
