"""Building the service graph: the boto3 backends for a ``Settings``, and Lambda's lazy provider.

Nothing here is global: an app is created with a provider (``application.create_app``) and keeps
it. The deployed app's provider builds the services from the environment on first use, once per
Lambda container; the local stack and tests hand their own app their own service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from chalice_app.aws import AwsClients, build_clients
from chalice_app.blobs import S3BlobStore
from chalice_app.event_store import DynamoEventStore
from chalice_app.queues import SqsBrowserQueues
from chalice_app.receive_urls import ReceiveUrlSigner
from chalice_app.sessions import SessionService
from chalice_app.settings import Settings


def build_service(settings: Settings, clients: AwsClients | None = None) -> SessionService:
    """The session service on AWS (or moto's server: the endpoint comes from the settings), over
    ``clients`` when the caller has built them for these settings already."""
    clients = clients or build_clients(settings)
    return SessionService(
        settings,
        DynamoEventStore(clients.dynamodb, settings.table_name),
        SqsBrowserQueues(clients.sqs, settings.queue_prefix, settings.queue_visibility_timeout_s),
        S3BlobStore(clients.s3, settings.bucket_name, presigner=clients.s3_presigner),
        receive_signer=ReceiveUrlSigner(clients.credentials, region=settings.region,
                                        endpoint=settings.browser_endpoint_url,
                                        lifetime_s=settings.receive_url_lifetime_s,
                                        live_visibility_s=settings.live_visibility_s),
    )


class LazyService:
    """A service provider that builds its service on first call, once, however many threads ask."""

    def __init__(self, build: Callable[[], SessionService]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._service: SessionService | None = None

    def __call__(self) -> SessionService:
        service = self._service
        if service is None:
            with self._lock:
                if self._service is None:
                    self._service = self._build()
                service = self._service
        return service


def from_environment() -> LazyService:
    """Lambda's provider: the services of ``Settings.from_env()``, built when first needed."""
    return LazyService(lambda: build_service(Settings.from_env()))
