"""A put whose answer was lost and that botocore sent again never stores one event twice."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalice_app.aws import build_clients
from chalice_app.event_store import DynamoEventStore
from pbfm_tooling.local_stack import LocalStack


class AnswerLostOnce:
    """A DynamoDB client whose first event put reaches the table but whose answer is lost: what the
    caller then sees is botocore's retry of it, refused by the condition on the item just written."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_item(self, **request: Any) -> Any:
        answer = self.real.put_item(**request)
        if self.lost == 0 and request["Item"]["SK"]["S"].startswith("EVENT#"):
            self.lost += 1
            return self.real.put_item(**request)  # the retry: ConditionalCheckFailedException
        return answer


def test_a_retried_append_is_one_event(stack: LocalStack, session_id: str) -> None:
    settings = stack.settings
    dynamodb = AnswerLostOnce(build_clients(settings).dynamodb)
    store = DynamoEventStore(dynamodb, settings.table_name)
    store.create_session(session_id, None, 3600)
    first = store.append(session_id, "PRICE_UPDATE", "k/1", None, 3600)
    second = store.append(session_id, "PRICE_UPDATE", "k/2", None, 3600)
    assert dynamodb.lost == 1
    assert (first.event.seq, second.event.seq) == (1, 2)
    assert [(e.seq, e.s3_key) for e in store.events_after(session_id, 0)] == [(1, "k/1"), (2, "k/2")]


def test_the_retry_really_is_refused_by_the_condition(stack: LocalStack, session_id: str) -> None:
    """The premise above, checked against moto: a second identical conditional put fails."""
    dynamodb = build_clients(stack.settings).dynamodb
    item = {"PK": {"S": f"SESSION#{session_id}"}, "SK": {"S": "EVENT#0000000001"}}
    dynamodb.put_item(TableName=stack.settings.table_name, Item=item, ConditionExpression="attribute_not_exists(SK)")
    try:
        dynamodb.put_item(TableName=stack.settings.table_name, Item=item,
                          ConditionExpression="attribute_not_exists(SK)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert exc.response.get("Item", {}).get("SK") == {"S": "EVENT#0000000001"}
    else:
        raise AssertionError("the condition did not refuse the second put")
