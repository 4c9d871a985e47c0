"""DynamoDB's conditional writes are atomic on AWS; in moto's threaded server they are not.

moto evaluates a ``ConditionExpression`` and then writes, with nothing held in between: two
threads can both see ``attribute_not_exists(SK)`` succeed and both write ``EVENT#{n}`` — one
event silently replaces the other (seen here under CPU load: two writers got the same sequence
number). The local stack serialises moto's DynamoDB writes with one lock so the embedded AWS keeps
AWS's guarantee that the sequence allocation relies on. Reads stay unlocked, as on AWS.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

# batch_write_item goes through put_item and delete_item.
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
# Held by each write (and by moto_closing around its check): writes happen one at a time.
WRITE_LOCK = threading.RLock()
_MARK = "_pbfm_atomic"


def make_dynamodb_writes_atomic() -> None:
    """Idempotent: wraps each write of moto's DynamoDB backend once per process."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITES:
        original = getattr(DynamoDBBackend, name, None)
        if original is None or getattr(original, _MARK, False):
            continue
        setattr(DynamoDBBackend, name, _locked(original))


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        with WRITE_LOCK:
            return method(*args, **kwargs)

    setattr(write, _MARK, True)
    return write
