"""Saving the embedded AWS's table and bucket and loading them into fresh, empty resources.

moto's backends are per process (the test run's shared local stack lives in them too), so each
"fresh AWS" here is a new table and bucket of their own names rather than a reset of moto.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pbfm_tooling import resources
from pbfm_tooling.moto_server import EmbeddedAwsServer
from pbfm_tooling.state_dir import StateDirectory

REGION = "us-west-1"
FAKE = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


@dataclass
class Aws:
    s3: Any
    dynamodb: Any
    table: str
    bucket: str


@pytest.fixture
def fresh_aws() -> Iterator[Callable[[], Aws]]:
    """Makes new, empty resources on demand (a new embedded AWS, as after a restart)."""
    server = EmbeddedAwsServer("127.0.0.1", 0)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", **FAKE)
    dynamodb = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}", **FAKE)

    def start() -> Aws:
        aws = Aws(s3, dynamodb, f"state-{uuid.uuid4().hex[:10]}", f"state-{uuid.uuid4().hex[:10]}")
        resources.create_resources(s3, dynamodb, table_name=aws.table, bucket_name=aws.bucket, region=REGION,
                                   cors_origins=["http://127.0.0.1:8000"])
        return aws

    yield start
    server.stop()


def _items(aws: Aws) -> list[dict[str, Any]]:
    items = [i for p in aws.dynamodb.get_paginator("scan").paginate(TableName=aws.table) for i in p["Items"]]
    return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def _objects(aws: Aws) -> dict[str, tuple[bytes, str]]:
    pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket)
    found = {}
    for key in [o["Key"] for p in pages for o in p.get("Contents", [])]:
        answer = aws.s3.get_object(Bucket=aws.bucket, Key=key)
        found[key] = (answer["Body"].read(), answer["ContentType"])
    return found


def _save(state: StateDirectory, aws: Aws) -> None:
    state.save(aws.s3, aws.dynamodb, table=aws.table, bucket=aws.bucket)


def _restore(state: StateDirectory, aws: Aws) -> Any:
    return state.restore(aws.s3, aws.dynamodb, table=aws.table, bucket=aws.bucket)


def test_a_save_loads_into_fresh_resources_unchanged(fresh_aws: Callable[[], Aws], tmp_path: Path) -> None:
    aws = fresh_aws()
    for n in range(1, 61):  # more than two DynamoDB batches
        aws.dynamodb.put_item(TableName=aws.table, Item={
            "PK": {"S": "SESSION#s1"}, "SK": {"S": f"EVENT#{n:010d}"}, "seq": {"N": str(n)},
            "payload": {"M": {"price": {"S": "0.0123"}, "tags": {"L": [{"S": "a"}, {"NULL": True}]}}},
            "blob": {"B": bytes([n % 256, 0, 255])}, "flags": {"BS": [b"x", bytes([n])]},
        })
    aws.dynamodb.put_item(TableName=aws.table, Item={"PK": {"S": "SESSION#s1"}, "SK": {"S": "METADATA"},
                                                     "seq": {"N": "60"}, "fanout": {"M": {}}})
    aws.s3.put_object(Bucket=aws.bucket, Key="sessions/s1/prices/1.json", Body=b'{"p":"1"}',
                      ContentType="application/json")
    aws.s3.put_object(Bucket=aws.bucket, Key="layouts/s1/a b/\u00e9.json", Body=b"{}", ContentType="application/json")
    state = StateDirectory(tmp_path / "state")
    _save(state, aws)

    again = fresh_aws()
    assert _items(again) == []
    restored = _restore(state, again)
    assert (restored.items, restored.objects) == (61, 2)
    assert _items(again) == _items(aws)
    assert _objects(again) == _objects(aws)


def test_a_save_replaces_the_previous_one(fresh_aws: Callable[[], Aws], tmp_path: Path) -> None:
    aws = fresh_aws()
    state = StateDirectory(tmp_path / "state")
    aws.s3.put_object(Bucket=aws.bucket, Key="sessions/s1/old.json", Body=b"{}")
    _save(state, aws)
    aws.s3.delete_object(Bucket=aws.bucket, Key="sessions/s1/old.json")
    aws.s3.put_object(Bucket=aws.bucket, Key="sessions/s1/new.json", Body=b"{}")
    _save(state, aws)
    assert sorted(p.name for p in state.path.iterdir()) == ["saved"]

    again = fresh_aws()
    _restore(state, again)
    assert list(_objects(again)) == ["sessions/s1/new.json"]


def test_nothing_saved_restores_nothing_and_fresh_forgets(fresh_aws: Callable[[], Aws], tmp_path: Path) -> None:
    aws = fresh_aws()
    state = StateDirectory(tmp_path / "state")
    assert _restore(state, aws).items == 0
    aws.s3.put_object(Bucket=aws.bucket, Key="sessions/s1/x.json", Body=b"{}")
    _save(state, aws)
    secret = state.cookie_secret()
    state.clear()
    assert _restore(state, fresh_aws()).objects == 0
    assert state.cookie_secret() == secret  # --fresh forgets the AWS state, not the identities


def test_the_cookie_secret_is_made_once_and_private(tmp_path: Path) -> None:
    state = StateDirectory(tmp_path / "state")
    secret = state.cookie_secret()
    assert len(secret) == 64 and StateDirectory(tmp_path / "state").cookie_secret() == secret
    mode = os.stat(tmp_path / "state" / "cookie-secret").st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_second_save_downloads_only_new_documents_and_keeps_the_rest(fresh_aws: Callable[[], Aws],
                                                                        tmp_path: Path) -> None:
    first = fresh_aws()
    first.s3.put_object(Bucket=first.bucket, Key="sessions/s/prices/1.json", Body=b'{"a":1}',
                        ContentType="application/json")
    state = StateDirectory(tmp_path / "state")
    state.save(first.s3, first.dynamodb, table=first.table, bucket=first.bucket)
    first.s3.put_object(Bucket=first.bucket, Key="sessions/s/prices/2.json", Body=b'{"b":2}',
                        ContentType="application/json")
    fetched: list[str] = []
    original = first.s3.get_object

    def counting_get(**kwargs: Any) -> Any:
        fetched.append(kwargs["Key"])
        return original(**kwargs)

    first.s3.get_object = counting_get
    try:
        state.save(first.s3, first.dynamodb, table=first.table, bucket=first.bucket)
    finally:
        first.s3.get_object = original
    assert fetched == ["sessions/s/prices/2.json"]
    second = fresh_aws()
    restored = state.restore(second.s3, second.dynamodb, table=second.table, bucket=second.bucket)
    assert restored.objects == 2
    assert _objects(second) == _objects(first)
