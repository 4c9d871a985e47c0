"""While one stack closes, moto refuses writes to its table and bucket only, after those under way.

(The stack's own stop, with a publish in flight across it, is ``test_stop_in_flight``.)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table

from pbfm_tooling.local_stack import patch_moto_as_the_embedded_aws
from pbfm_tooling.moto_closing import closing
from tests.integration.moto_in_process import FAKE, moto_server

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Any, Any]]:
    patch_moto_as_the_embedded_aws()
    with moto_server() as endpoint:
        yield (boto3.client("dynamodb", endpoint_url=endpoint, config=NO_RETRIES, **FAKE),
               boto3.client("s3", endpoint_url=endpoint, config=NO_RETRIES, **FAKE))


def _table(db: Any) -> str:
    name = f"closing-{uuid.uuid4().hex[:8]}"
    db.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
    return name


def _bucket(s3: Any) -> str:
    name = f"closing-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": FAKE["region_name"]})
    return name


def _refused(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def test_the_closing_stack_s_writes_are_refused_and_others_go_on(aws: tuple[Any, Any]) -> None:
    db, s3 = aws
    table, other_table = _table(db), _table(db)
    bucket, other_bucket = _bucket(s3), _bucket(s3)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"1")
    db.put_item(TableName=table, Item={"PK": {"S": "kept"}, "n": {"N": "1"}})
    with closing(table, bucket):
        item = {"PK": {"S": "new"}}
        assert _refused(lambda: db.put_item(TableName=table, Item=item)) == "ServiceUnavailable"
        assert _refused(lambda: db.update_item(TableName=table, Key={"PK": {"S": "kept"}},
                                               UpdateExpression="SET n = :two",
                                               ExpressionAttributeValues={":two": {"N": "2"}})) == "ServiceUnavailable"
        assert _refused(lambda: db.delete_item(TableName=table, Key={"PK": {"S": "kept"}})) == "ServiceUnavailable"
        assert _refused(lambda: db.transact_write_items(TransactItems=[
            {"Put": {"TableName": other_table, "Item": {"PK": {"S": "a"}}}},
            {"Put": {"TableName": table, "Item": {"PK": {"S": "b"}}}}])) == "ServiceUnavailable"
        assert _refused(lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"2")) == "ServiceUnavailable"
        assert _refused(lambda: s3.copy_object(Bucket=bucket, Key="copy",
                                               CopySource={"Bucket": bucket, "Key": "kept"})) == "ServiceUnavailable"
        # What was there can be read (the save does), and other stacks write on.
        assert db.get_item(TableName=table, Key={"PK": {"S": "kept"}})["Item"]["n"] == {"N": "1"}
        assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"1"
        db.put_item(TableName=other_table, Item=item)
        s3.put_object(Bucket=other_bucket, Key="new", Body=b"2")
        # A restart's clean-up deletes the bucket's objects while closing.
        s3.delete_object(Bucket=bucket, Key="kept")
    assert [i["PK"]["S"] for i in db.scan(TableName=table)["Items"]] == ["kept"]
    assert "Item" in db.get_item(TableName=other_table, Key={"PK": {"S": "new"}})
    assert "Item" not in db.get_item(TableName=other_table, Key={"PK": {"S": "a"}})  # the transaction was refused whole
    db.put_item(TableName=table, Item={"PK": {"S": "after"}})  # open again once closed
    s3.put_object(Bucket=bucket, Key="after", Body=b"3")


def test_a_write_under_way_ends_before_the_closing_begins(aws: tuple[Any, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    db, s3 = aws
    table, bucket = _table(db), _bucket(s3)
    entered = threading.Event()
    put_item = Table.put_item

    def slow_put(self: Any, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        time.sleep(0.3)
        return put_item(self, *args, **kwargs)

    monkeypatch.setattr(Table, "put_item", slow_put)
    writer = threading.Thread(target=lambda: db.put_item(TableName=table, Item={"PK": {"S": "under-way"}}))
    writer.start()
    assert entered.wait(10)
    with closing(table, bucket):
        # The closing began only after the write ended: it is in the table, as the save will see.
        assert "Item" in db.get_item(TableName=table, Key={"PK": {"S": "under-way"}}, ConsistentRead=True)
    writer.join(10)
