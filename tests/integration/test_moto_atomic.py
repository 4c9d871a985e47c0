"""The embedded AWS keeps DynamoDB's guarantee: of concurrent conditional puts of a key, one wins."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pbfm_tooling.moto_atomic import make_dynamodb_writes_atomic
from tests.integration.moto_in_process import FAKE, moto_server


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    make_dynamodb_writes_atomic()
    with moto_server() as endpoint:
        yield boto3.client("dynamodb", endpoint_url=endpoint, **FAKE)


def test_exactly_one_of_many_racing_conditional_puts_wins(dynamodb: Any) -> None:
    table = f"atomic-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
    wins: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(8)

    def racer(name: str) -> None:
        start.wait()
        for n in range(60):
            try:
                dynamodb.put_item(TableName=table, Item={"PK": {"S": f"EVENT#{n}"}, "by": {"S": name}},
                                  ConditionExpression="attribute_not_exists(PK)")
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
                continue
            with lock:
                wins[f"EVENT#{n}"] += 1

    threads = [threading.Thread(target=racer, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(wins.values()) == {1} and len(wins) == 60
