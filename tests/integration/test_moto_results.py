"""The embedded AWS sends DynamoDB answers in wire form as they are, and they are moto's own answers.

Every DynamoDB answer of the server below is written both ways: by the patched path the client
receives, and by moto's own serializer on the same result. The two must parse to the same JSON,
with the same status and content type, whatever the items hold. The tests also require that the
plain path was taken where it should be (else they would only compare moto with itself), and that
answers moto must transform (binary values, timestamps) still take moto's way.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.core.responses import ActionResult
from moto.core.serialize import ResponseSerializer
from moto.dynamodb.responses import DynamoResult

from pbfm_tooling.local_stack import patch_moto_as_the_embedded_aws
from pbfm_tooling.moto_results import plain_json_body
from tests.integration.moto_in_process import FAKE, moto_server

# moto's answers to these are in wire form: the plain path must take them.
PLAIN = {"PutItem", "GetItem", "UpdateItem", "Query", "Scan"}
# These are not, and take moto's way: DeleteItem's answer has a key its shape lacks
# (ConsumedCapacityUnits, which the serializer drops); BatchGetItem's capacity is an int where
# the shape wants a double.
TRANSFORMED = {"DeleteItem", "BatchGetItem"}


@dataclass(frozen=True)
class Answer:
    operation: str
    plain: bool
    sent: tuple[int, str, Any]
    moto_s_own: tuple[int, str, Any]


@pytest.fixture(scope="module")
def answers() -> Iterator[list[Answer]]:
    """Every DynamoDB answer of the server, as sent and as moto's own serializer writes it."""
    patch_moto_as_the_embedded_aws()
    patched = DynamoResult.execute_result
    serialize = ResponseSerializer.serialize
    serialized: list[object] = []
    seen: list[Answer] = []

    def counted(self: Any, result: Any) -> Any:
        serialized.append(result)
        return serialize(self, result)

    def both_ways(self: Any, context: Any) -> Any:
        before = len(serialized)
        sent = patched(self, context)
        plain = len(serialized) == before  # moto's serializer did not run for the answer sent
        assert plain == (plain_json_body(self.result, context) is not None)
        own = ActionResult.execute_result(self, context)
        seen.append(Answer(str(context.operation_model.name), plain, _parsed(sent), _parsed(own)))
        return sent

    ResponseSerializer.serialize = counted  # type: ignore[method-assign]
    DynamoResult.execute_result = both_ways  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        DynamoResult.execute_result = patched  # type: ignore[method-assign]
        ResponseSerializer.serialize = serialize  # type: ignore[method-assign]


def _parsed(answer: tuple[int, dict[str, str], str]) -> tuple[int, str, Any]:
    status, headers, body = answer
    return status, headers["Content-Type"], json.loads(body)


@pytest.fixture(scope="module")
def table(answers: list[Answer]) -> Iterator[tuple[Any, str]]:
    with moto_server() as endpoint:
        db = boto3.client("dynamodb", endpoint_url=endpoint, **FAKE)
        name = f"results-{uuid.uuid4().hex[:8]}"
        db.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                              {"AttributeName": "SK", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                                   {"AttributeName": "SK", "KeyType": "RANGE"}])
        yield db, name


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
numbers = st.one_of(st.integers(-10**12, 10**12).map(str),
                    st.decimals(-10**6, 10**6, places=4, allow_nan=False).map(str))
scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=30)),
    st.builds(lambda n: {"N": n}, numbers),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=10), min_size=1, max_size=4)),
    st.builds(lambda n: {"NS": sorted(set(n))}, st.lists(st.integers(-999, 999).map(str), min_size=1, max_size=4)),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.builds(lambda items: {"L": items}, st.lists(inner, max_size=4)),
    st.builds(lambda fields: {"M": fields}, st.dictionaries(names, inner, max_size=4)),
), max_leaves=12)
items = st.dictionaries(names.filter(lambda n: n not in ("PK", "SK")), values, min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=items)
def test_whatever_an_item_holds_the_answer_sent_is_moto_s_own(table: tuple[Any, str], answers: list[Answer],
                                                              item: dict[str, Any]) -> None:
    db, name = table
    key = {"PK": {"S": "P"}, "SK": {"S": uuid.uuid4().hex}}
    start = len(answers)
    db.put_item(TableName=name, Item={**key, **item}, ReturnConsumedCapacity="TOTAL")
    got = db.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]
    assert _comparable(got) == _comparable({**key, **item})
    db.query(TableName=name, KeyConditionExpression="PK = :p AND SK = :s",
             ExpressionAttributeValues={":p": key["PK"], ":s": key["SK"]}, ReturnConsumedCapacity="INDEXES")
    first = next(iter(item))
    db.update_item(TableName=name, Key=key, UpdateExpression="SET #a = :v, #n = :one",
                   ExpressionAttributeNames={"#a": first, "#n": "touched"},
                   ExpressionAttributeValues={":v": item[first], ":one": {"N": "1"}}, ReturnValues="ALL_NEW")
    db.update_item(TableName=name, Key=key, UpdateExpression="SET #n = #n + :one",
                   ExpressionAttributeNames={"#n": "touched"}, ExpressionAttributeValues={":one": {"N": "1"}},
                   ReturnValues="UPDATED_OLD")
    db.batch_get_item(RequestItems={name: {"Keys": [key]}})
    db.delete_item(TableName=name, Key=key, ReturnValues="ALL_OLD")
    these = answers[start:]
    assert {a.operation for a in these} == (PLAIN | TRANSFORMED) - {"Scan"}
    assert {a.operation for a in these if not a.plain} == TRANSFORMED
    assert [a for a in these if a.sent != a.moto_s_own] == []


def test_pages_counts_and_scans_are_moto_s_own(table: tuple[Any, str], answers: list[Answer]) -> None:
    db, name = table
    for n in range(12):
        db.put_item(TableName=name, Item={"PK": {"S": "pages"}, "SK": {"S": f"E#{n:02d}"}, "n": {"N": str(n)}})
    start = len(answers)
    page = db.query(TableName=name, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "pages"}},
                    Limit=5)
    assert page["LastEvaluatedKey"] == {"PK": {"S": "pages"}, "SK": {"S": "E#04"}}
    counted = db.query(TableName=name, KeyConditionExpression="PK = :p", Select="COUNT",
                       ExpressionAttributeValues={":p": {"S": "pages"}})
    assert counted["Count"] == 12 and "Items" not in counted
    db.scan(TableName=name, Limit=3, ReturnConsumedCapacity="TOTAL")
    missing = db.get_item(TableName=name, Key={"PK": {"S": "none"}, "SK": {"S": "none"}})
    assert "Item" not in missing
    these = answers[start:]
    assert [a.operation for a in these] == ["Query", "Query", "Scan", "GetItem"]
    assert all(a.plain for a in these) and [a for a in these if a.sent != a.moto_s_own] == []


def test_answers_moto_must_transform_take_moto_s_way(table: tuple[Any, str], answers: list[Answer]) -> None:
    db, name = table
    key = {"PK": {"S": "binary"}, "SK": {"S": "one"}}
    blob = bytes(range(256))
    start = len(answers)
    db.put_item(TableName=name, Item={**key, "b": {"B": blob}, "bs": {"BS": [b"x", b"y"]}})
    got = db.get_item(TableName=name, Key=key)["Item"]
    assert got["b"]["B"] == blob and sorted(got["bs"]["BS"]) == [b"x", b"y"]
    described = db.describe_table(TableName=name)["Table"]
    assert described["TableName"] == name and described["CreationDateTime"].year >= 2024
    these = answers[start:]
    assert [(a.operation, a.plain) for a in these] == [("PutItem", True), ("GetItem", False),
                                                       ("DescribeTable", False)]
    assert these[1].sent[2]["Item"]["b"]["B"] == base64.b64encode(blob).decode()
    assert [a for a in these if a.sent != a.moto_s_own] == []


def _comparable(item: dict[str, Any]) -> dict[str, Any]:
    """An item as a client compares it: sets without order, numbers by value."""
    def value(v: dict[str, Any]) -> Any:
        (kind, inner), = v.items()
        if kind in ("SS", "NS"):
            return kind, frozenset(float(x) if kind == "NS" else x for x in inner)
        if kind == "N":
            return kind, float(inner)
        if kind == "L":
            return kind, tuple(value(x) for x in inner)
        if kind == "M":
            return kind, {k: value(x) for k, x in inner.items()}
        return kind, inner
    return {k: value(v) for k, v in item.items()}
