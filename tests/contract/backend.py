"""One backend under contract: the three ports and the clock they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalice_app.ports import BlobStore, BrowserQueues, EventStore
from pbfm_tooling.memory_backends import ManualClock


@dataclass
class Backend:
    name: str
    clock: ManualClock
    store: EventStore
    blobs: BlobStore
    # Browser queues with this visibility timeout (s), under a prefix of their own.
    queues: Callable[[int], BrowserQueues]
