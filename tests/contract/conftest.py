"""The contract fixtures: every port twice, in memory and as the boto3 implementation on a real moto server.

The same tests run against both (``backend`` is parametrized), so the in-memory backends the fast
service tests use cannot drift from what DynamoDB, SQS and S3 (as moto serves them) do. Both event
stores run on one ``ManualClock`` (TTL is read against the injected clock); SQS keeps its own time
for visibility, so queue tests use visibility timeouts of 0 (redelivered at once) or 60 s (never
within a test).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from chalice_app.aws import AwsClients, build_clients
from chalice_app.blobs import S3BlobStore
from chalice_app.event_store import DynamoEventStore
from chalice_app.queues import SqsBrowserQueues
from chalice_app.settings import Settings
from pbfm_tooling.local_stack import LOCAL_CREDENTIALS, patch_moto_as_the_embedded_aws
from pbfm_tooling.memory_backends import ManualClock, MemoryBlobStore, MemoryBrowserQueues, MemoryEventStore
from pbfm_tooling.resources import create_resources
from tests.contract.backend import Backend


@pytest.fixture(scope="session")
def moto_aws() -> Iterator[tuple[Settings, AwsClients]]:
    """A moto server in this process, its resources created, and one set of clients for every test."""
    from pbfm_tooling.moto_server import EmbeddedAwsServer

    os.environ.update(LOCAL_CREDENTIALS)
    # The embedded AWS as the local stack runs it (DynamoDB's conditional writes atomic, as on AWS;
    # a query reads its own partition).
    patch_moto_as_the_embedded_aws()
    server = EmbeddedAwsServer("127.0.0.1", 0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        settings = Settings(aws_endpoint_url=f"http://{host}:{port}", table_name="contract-table",
                            bucket_name="contract-bucket")
        clients = build_clients(settings)
        create_resources(clients.s3, clients.dynamodb, table_name=settings.table_name,
                         bucket_name=settings.bucket_name, region=settings.region, cors_origins=[])
        yield settings, clients
    finally:
        server.stop()


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Backend:
    clock = ManualClock()
    prefix = "c" + secrets.token_hex(3)
    if request.param == "memory":
        return Backend("memory", clock, MemoryEventStore(clock), MemoryBlobStore("contract-bucket", clock),
                       lambda visibility: MemoryBrowserQueues(prefix, visibility, clock))
    settings, clients = request.getfixturevalue("moto_aws")
    return Backend("moto", clock, DynamoEventStore(clients.dynamodb, settings.table_name, clock=clock),
                   S3BlobStore(clients.s3, settings.bucket_name),
                   lambda visibility: SqsBrowserQueues(clients.sqs, prefix, visibility))


@pytest.fixture
def session_id() -> str:
    return "k-" + secrets.token_hex(5)
