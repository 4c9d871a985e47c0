"""While the local stack saves its state to stop, moto refuses writes to that stack's table and bucket.

The app answers each request in a thread of its own, and a stop cannot wait for them all: a
server-side long poll lasts up to 20 s. A write that lands after the stop's save is answered as
done and yet is missing from the saved state: after a restart a published event is gone and its
sequence number goes to another event. So from the save to the end of the stop, moto refuses the
writes that would change what was saved, with a 503 (the app answers 502: a page tries again once
the stack is back, the assistant gets an error result): a write is either in the save or refused,
never answered and lost.

Writes under way when the stop begins finish first: every DynamoDB write holds the lock of
``moto_atomic`` (these wrappers take it too, around the check and the write), and the bucket's
writes take the same lock here. Deletes of objects pass: the stop's own clean-up (a restart in one
process, see ``LocalStack.restart``) deletes the bucket's objects, and the app never deletes one.
Other stacks of the same process (a test run has several) keep writing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pbfm_tooling.moto_atomic import WRITE_LOCK

_MARK = "_pbfm_refused_while_closing"
_closing_tables: set[str] = set()
_closing_buckets: set[str] = set()


def _table_named(arguments: dict[str, Any]) -> Iterable[str]:
    return [arguments["table_name"]]


def _tables_of_transaction(arguments: dict[str, Any]) -> Iterable[str]:
    return [op.get("TableName", "") for item in arguments["transact_items"] for op in item.values()]


# moto's writes, by the argument that names what they write to.
_TABLE_WRITES: dict[str, Callable[[dict[str, Any]], Iterable[str]]] = {
    "put_item": _table_named, "update_item": _table_named, "delete_item": _table_named,
    "transact_write_items": _tables_of_transaction,
}
_BUCKET_WRITES = {"put_object": "bucket_name", "copy_object": "dest_bucket_name"}


def refuse_writes_while_closing() -> None:
    """Idempotent: wraps moto's table and bucket writes once per process."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3.models import S3Backend

    for name, tables in _TABLE_WRITES.items():
        _wrap(DynamoDBBackend, name, _to_closing_table(tables), _refuse_table_write)
    for name, argument in _BUCKET_WRITES.items():
        _wrap(S3Backend, name, _to_closing_bucket(argument), _refuse_bucket_write)


def _to_closing_table(tables: Callable[[dict[str, Any]], Iterable[str]]) -> Callable[[dict[str, Any]], bool]:
    return lambda arguments: any(table in _closing_tables for table in tables(arguments))


def _to_closing_bucket(argument: str) -> Callable[[dict[str, Any]], bool]:
    return lambda arguments: arguments[argument] in _closing_buckets


@contextmanager
def closing(table: str, bucket: str) -> Iterator[None]:
    """Within the block, writes to ``table`` and ``bucket`` are refused; those under way end first."""
    refuse_writes_while_closing()
    with WRITE_LOCK:
        _closing_tables.add(table)
        _closing_buckets.add(bucket)
    try:
        yield
    finally:
        with WRITE_LOCK:
            _closing_tables.discard(table)
            _closing_buckets.discard(bucket)


def _wrap(backend: type, name: str, closed: Callable[[dict[str, Any]], bool], refuse: Callable[[], None]) -> None:
    original = getattr(backend, name)
    if getattr(original, _MARK, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def write(*args: Any, **kwargs: Any) -> Any:
        with WRITE_LOCK:
            if closed(signature.bind(*args, **kwargs).arguments):
                refuse()
            return original(*args, **kwargs)

    setattr(write, _MARK, True)
    setattr(backend, name, write)


_MESSAGE = "The local stack is stopping; try again when it is back."


def _refuse_table_write() -> None:
    from moto.dynamodb.exceptions import DynamodbException

    error = DynamodbException("com.amazonaws.dynamodb.v20120810#ServiceUnavailable", _MESSAGE)
    error.code = 503
    raise error


def _refuse_bucket_write() -> None:
    from moto.s3.exceptions import S3ClientError

    raise S3ClientError("ServiceUnavailable", _MESSAGE)
