"""The process-wide service graph, built once from settings (per Lambda container or local server)."""

from __future__ import annotations

import threading

from chalice_app.aws import build_clients
from chalice_app.blobs import BlobStore
from chalice_app.event_store import EventStore
from chalice_app.queues import BrowserQueues
from chalice_app.sessions import SessionService
from chalice_app.settings import Settings

_lock = threading.Lock()
_service: SessionService | None = None


def configure(settings: Settings) -> SessionService:
    """Build the services for these settings (the local stack and tests call this explicitly)."""
    global _service
    clients = build_clients(settings)
    service = SessionService(
        settings,
        EventStore(clients.dynamodb, settings.table_name),
        BrowserQueues(clients.sqs, settings.queue_prefix, settings.queue_visibility_timeout_s),
        BlobStore(clients.s3, settings.bucket_name),
    )
    with _lock:
        _service = service
    return service


def swap(replacement: SessionService | None) -> SessionService | None:
    """Install ``replacement`` (None: build from the environment on next use); returns the previous.

    A local stack installs its own services and puts the previous ones back when it stops, so
    stacks started one inside another (a benchmark inside a test run) leave no dangling endpoint.
    """
    global _service
    with _lock:
        previous, _service = _service, replacement
    return previous


def service() -> SessionService:
    """The configured services, built from the environment on first use (Lambda's case)."""
    current = _service
    if current is None:
        with _lock:
            current = _service
        if current is None:
            current = configure(Settings.from_env())
    return current


def settings() -> Settings:
    return service().settings
