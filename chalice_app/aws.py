"""The only place that builds boto3 clients.

The endpoint comes from settings, so moto's server locally and AWS when deployed are the same code
path. ``aws_errors`` turns botocore's ``ClientError`` into this project's errors at the boundary.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import Loader, create_loader

from chalice_app.errors import ApiError, UpstreamError
from chalice_app.settings import Settings

QUEUE_MISSING_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)


@dataclass(frozen=True)
class AwsClients:
    s3: Any
    sqs: Any
    dynamodb: Any
    # Signs the URLs browsers use: a presigned URL names its host, so it is built for the endpoint
    # browsers reach (the local gateway), which may differ from the server's own (moto).
    s3_presigner: Any
    # The server's own credentials, frozen at each call (a Lambda role's rotate; botocore refreshes
    # them): what presigned SQS receives are signed with, session token included.
    credentials: Callable[[], Credentials]


def frozen_credentials(session: boto3.session.Session) -> Callable[[], Credentials]:
    def current() -> Credentials:
        found = session.get_credentials()
        if found is None:
            raise UpstreamError("no AWS credentials to sign browsers' queue requests with")
        frozen = found.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return current


# botocore's endpoint and service definitions, parsed once per process. Each set of clients has a
# session of its own (credentials are read per session), and a session with a loader of its own
# parses those JSON files again: ~0.1 s of CPU for every set, at each cold start and in each test.
_LOADER: Loader = create_loader(os.environ.get("AWS_DATA_PATH"))  # where botocore's own loader looks


def _session(region: str | None, **credentials: str | None) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, region_name=region, **credentials)


def service_client(service: str, region: str, *, endpoint_url: str, config: Config, access_key: str,
                   secret_key: str, session_token: str | None) -> Any:
    """One client with credentials of its own (the local AWS gateway's reads of moto)."""
    session = _session(region, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                       aws_session_token=session_token)
    return session.client(service, endpoint_url=endpoint_url, config=config)


def build_clients(settings: Settings) -> AwsClients:
    # Fan-out and concurrent long-polls share these clients across threads; the default pool of 10
    # connections would serialise them.
    config = Config(
        region_name=settings.region,
        signature_version="s3v4",
        max_pool_connections=64,
        retries={"max_attempts": 3, "mode": "standard"},
        # Long polls wait up to 20 s on the server side.
        read_timeout=30,
        connect_timeout=5,
    )
    session = _session(settings.region)
    endpoint = settings.aws_endpoint_url

    def client(service: str, endpoint_url: str | None = endpoint) -> Any:
        return session.client(service, endpoint_url=endpoint_url, config=config)

    s3 = client("s3")
    presigner = s3 if settings.browser_endpoint_url == endpoint else client("s3", settings.browser_endpoint_url)
    return AwsClients(s3=s3, sqs=client("sqs"), dynamodb=client("dynamodb"), s3_presigner=presigner,
                      credentials=frozen_credentials(session))


def default_region(fallback: str) -> str:
    """The region the ambient AWS configuration names (profile or environment), else ``fallback``."""
    return _session(None).region_name or fallback


def caller_account(region: str) -> str:
    """The account of the ambient credentials; raises botocore's errors when there are none."""
    sts = _session(region).client("sts", region_name=region)
    return str(sts.get_caller_identity()["Account"])


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_queue_missing(exc: ClientError) -> bool:
    return error_code(exc) in QUEUE_MISSING_CODES


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Report an unexpected AWS failure as a 502 that names what we were doing."""
    try:
        yield
    except ApiError:
        raise
    except ClientError as exc:
        raise UpstreamError(f"{action} failed: {error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise UpstreamError(f"{action} failed: {exc}") from exc
