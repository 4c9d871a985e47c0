"""A DynamoDB query in moto's server reads every item of the table, sorted, to find one partition.

``Table.query`` on the table's own key (no index) takes ``self.all_items()`` — every item of every
partition, sorted by key — and keeps those whose hash key matches. Its cost grows with the whole
table, not with the answer: the event log of every session ever opened on the embedded AWS is
read again by each join, repair and history page of any one session, so a long ``serve`` or
``demo`` slows down as it runs, and so does a test run whose stack lives across many sessions.

The local stack lets such a query read only its own partition, as DynamoDB does. Everything after
that step (the sort by range key, conditions, pagination, filters, projections, the copy of the
results) is moto's own code, unchanged. Index queries are left as they are: an index is not
partitioned by the table's hash key.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

_MARK = "_pbfm_reads_one_partition"


def make_dynamodb_queries_read_one_partition() -> None:
    """Idempotent: wraps moto's ``Table.query`` once per process."""
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, _MARK, False):
        return
    Table.query = _one_partition(original)  # type: ignore[method-assign]


class _Partition:
    """The table as one query of ``hash_key`` sees it: ``all_items()`` is that partition alone."""

    def __init__(self, table: Any, hash_key: Any) -> None:
        self._table = table
        self._hash_key = hash_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def all_items(self) -> list[Any]:
        # ``items`` is a defaultdict: ``get`` must not create an empty partition as a side effect.
        partition = self._table.items.get(self._hash_key)
        if partition is None:
            return []
        return list(partition.values()) if self._table.range_key_attr else [partition]


def _one_partition(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def query(table: Any, *args: Any, **kwargs: Any) -> Any:
        # moto passes index_name by position; bind to read it whichever way it comes.
        arguments = signature.bind(table, *args, **kwargs).arguments
        if arguments.get("index_name") is None and arguments.get("hash_key") is not None:
            return original(_Partition(table, arguments["hash_key"]), *args, **kwargs)
        return original(table, *args, **kwargs)

    setattr(query, _MARK, True)
    return query
