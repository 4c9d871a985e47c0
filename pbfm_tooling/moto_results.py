"""moto's server spends more on writing a DynamoDB answer than on finding it.

Since moto 5.2 each answer goes through a generic serializer: for every key of every item it walks
botocore's output shape, builds a context object, tries the key's aliases (``Items``, ``items``)
and the service's transformers, one dynamic call per node. A query of 50 events or a session item
with its browsers is thousands of such steps: in this project's test run, DynamoDB's answers took
more of moto's time than the reads and writes they answer.

Yet what moto's DynamoDB handlers return (``DynamoResult``, already through ``dynamo_to_dict``) is
usually the wire form itself: members named as in the shape, strings, numbers, booleans, lists and
maps. For such an answer the serializer's output is ``json.dumps`` of it, so the local stack sends
it that way. The check walks the shape once and lets anything else take moto's own path: a member
the shape does not name (the serializer would drop it or look up an alias), a value of another type
(a blob, a timestamp, an enum, ``None``, a number where a string is due), a renamed member, an
error, an event stream, pretty printing.
"""

from __future__ import annotations

import json
from typing import Any

from botocore import xform_name

_MARK = "_pbfm_plain_json"
_CONTENT_TYPE = "application/x-amz-json-{version}"


def make_dynamodb_results_plain_json() -> None:
    """Idempotent: DynamoDB answers already in wire form skip moto's serializer."""
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    if getattr(original, _MARK, False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        body = plain_json_body(self.result, context)
        if body is None:
            return original(self, context)
        return 200, {"Content-Type": _content_type(context.operation_model)}, body

    setattr(execute_result, _MARK, True)
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def plain_json_body(result: Any, context: Any) -> str | None:
    """The answer's JSON when ``result`` is already its wire form, else None (moto serializes it)."""
    from moto import settings

    operation = context.operation_model
    shape = operation.output_shape
    if (
        shape is None
        or operation.has_event_stream_output
        or operation.http.get("responseCode", 200) != 200
        or operation.service_model.protocol != "json"
        or settings.PRETTIFY_RESPONSES
        or getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        or not _is_wire_form(result, shape)
    ):
        return None
    return json.dumps(result)


def _content_type(operation: Any) -> str:
    return _CONTENT_TYPE.format(version=operation.service_model.metadata.get("jsonVersion", "1.0"))


def _alias_shadows(key: str, shape: Any, members: Any, value: dict[str, Any]) -> bool:
    """moto looks a list or structure member up by its shape's name before its own key."""
    if shape.type_name not in ("list", "structure") or shape.name == key or shape.name in members:
        return False
    return shape.name in value or xform_name(shape.name) in value


def _is_wire_form(value: Any, shape: Any) -> bool:
    kind = shape.type_name
    if kind == "structure":
        if type(value) is not dict or shape.is_document_type:
            return False
        members = shape.members
        for key, member in value.items():
            member_shape = members.get(key)
            if (
                member_shape is None
                or member_shape.serialization.get("name", key) != key
                or _alias_shadows(key, member_shape, members, value)
                or not _is_wire_form(member, member_shape)
            ):
                return False
        return True
    if kind == "map":
        if type(value) is not dict:
            return False
        value_shape = shape.value
        return all(type(key) is str and _is_wire_form(item, value_shape) for key, item in value.items())
    if kind == "list":
        if type(value) is not list:
            return False
        member_shape = shape.member
        return all(_is_wire_form(item, member_shape) for item in value)
    if kind == "string":
        return type(value) is str
    if kind in ("integer", "long"):
        return type(value) is int
    if kind in ("double", "float"):
        return type(value) is float
    if kind == "boolean":
        return type(value) is bool
    return False
