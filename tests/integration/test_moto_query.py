"""A query of the embedded AWS reads its own partition only, and answers as moto always did.

The table has many partitions besides the one queried. Each query below is checked against the
answer computed from the items written, and the table's full listing (``Table.all_items``, what
moto's query walked) is never read by a query on the table's key. Index queries still use it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from pbfm_tooling.moto_query import make_dynamodb_queries_read_one_partition
from tests.integration.moto_in_process import FAKE, moto_server

OURS = "SESSION#ours"
EVENTS = [f"EVENT#{n:04d}" for n in range(1, 31)]
OTHER_PARTITIONS = 60


@pytest.fixture(scope="module")
def table() -> Iterator[tuple[Any, str]]:
    """A table shaped like ours (PK, SK, one index), our partition among many others."""
    make_dynamodb_queries_read_one_partition()
    with moto_server() as endpoint:
        db = boto3.client("dynamodb", endpoint_url=endpoint, **FAKE)
        name = f"query-{uuid.uuid4().hex[:8]}"
        keys = [{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"},
                {"AttributeName": "kind", "AttributeType": "S"}]
        db.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=keys,
                        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                                   {"AttributeName": "SK", "KeyType": "RANGE"}],
                        GlobalSecondaryIndexes=[{"IndexName": "by-kind",
                                                 "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"},
                                                               {"AttributeName": "SK", "KeyType": "RANGE"}],
                                                 "Projection": {"ProjectionType": "ALL"}}])
        for n in range(OTHER_PARTITIONS):
            for sk in EVENTS[:5]:
                db.put_item(TableName=name, Item={"PK": {"S": f"SESSION#other-{n:03d}"}, "SK": {"S": sk},
                                                  "kind": {"S": "other"}})
        for n, sk in enumerate(EVENTS):
            db.put_item(TableName=name, Item={"PK": {"S": OURS}, "SK": {"S": sk}, "kind": {"S": "ours"},
                                              "n": {"N": str(n)}})
        yield db, name


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time a query (or anything) lists the whole table."""
    seen: list[str] = []
    original = Table.all_items

    def all_items(self: Any) -> Any:
        seen.append(self.name)
        return original(self)

    monkeypatch.setattr(Table, "all_items", all_items)
    return seen


def sks(answer: dict[str, Any]) -> list[str]:
    return [item["SK"]["S"] for item in answer["Items"]]


def query(table: tuple[Any, str], **kwargs: Any) -> dict[str, Any]:
    db, name = table
    return dict(db.query(TableName=name, **kwargs))


def test_a_query_of_one_partition_never_lists_the_table(table: tuple[Any, str], listings: list[str]) -> None:
    answer = query(table, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": OURS}})
    assert sks(answer) == EVENTS and answer["Count"] == answer["ScannedCount"] == len(EVENTS)
    assert listings == []


def test_conditions_order_filters_and_projections_are_moto_s_own(table: tuple[Any, str],
                                                                   listings: list[str]) -> None:
    after = {":pk": {"S": OURS}, ":sk": {"S": EVENTS[24]}}
    assert sks(query(table, KeyConditionExpression="PK = :pk AND SK > :sk",
                     ExpressionAttributeValues=after)) == EVENTS[25:]
    newest = query(table, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": OURS}},
                   ScanIndexForward=False, Limit=3)
    assert sks(newest) == EVENTS[::-1][:3] and newest["LastEvaluatedKey"]["SK"]["S"] == EVENTS[-3]
    even = query(table, KeyConditionExpression="PK = :pk AND begins_with(SK, :e)",
                 FilterExpression="n < :ten", ProjectionExpression="SK",
                 ExpressionAttributeValues={":pk": {"S": OURS}, ":e": {"S": "EVENT#"}, ":ten": {"N": "10"}})
    assert even["Items"] == [{"SK": {"S": sk}} for sk in EVENTS[:10]] and even["ScannedCount"] == len(EVENTS)
    assert listings == []


def test_pages_follow_one_another_to_the_end(table: tuple[Any, str], listings: list[str]) -> None:
    pages: list[str] = []
    start: dict[str, Any] | None = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        answer = query(table, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": OURS}},
                       Limit=7, **extra)
        pages += sks(answer)
        start = answer.get("LastEvaluatedKey")
        if start is None:
            break
    assert pages == EVENTS and listings == []


def test_a_missing_partition_is_empty_and_stays_absent(table: tuple[Any, str], listings: list[str]) -> None:
    _, name = table
    answer = query(table, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": "SESSION#none"}})
    assert answer["Items"] == [] and answer["Count"] == 0
    # moto keeps partitions in a defaultdict: a lookup that indexed it would leave an empty one behind.
    partitions = dynamodb_backends[ACCOUNT_ID][FAKE["region_name"]].tables[name].items
    assert [key.value for key in partitions if key.value.startswith("SESSION#none")] == []
    assert listings == []


def test_an_index_query_is_left_to_moto(table: tuple[Any, str], listings: list[str]) -> None:
    answer = query(table, IndexName="by-kind", KeyConditionExpression="kind = :k",
                   ExpressionAttributeValues={":k": {"S": "ours"}})
    assert sks(answer) == EVENTS
    _, name = table
    assert listings == [name]
