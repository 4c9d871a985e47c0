"""The local stack's one-time lookups in moto (its service modules, a handler's methods) answer as moto's own did."""

from __future__ import annotations

import os

import pytest

from pbfm_tooling.moto_dispatch import list_moto_modules_once, list_response_methods_once


def test_the_listing_is_moto_s_and_reads_the_directory_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import backends

    list_moto_modules_once()
    listed = list(backends.list_of_moto_modules())
    assert {"sqs", "s3", "dynamodb", "core"} <= set(listed) and "__pycache__" not in listed
    path = os.path.dirname(backends.__file__)
    assert listed == sorted(name for name in os.listdir(path)
                            if os.path.isdir(os.path.join(path, name)) and not name.startswith("__"))

    def no_listing(_: str) -> list[str]:
        raise AssertionError("moto listed its directory again")

    monkeypatch.setattr(os, "listdir", no_listing)
    assert list(backends.list_of_moto_modules()) == listed
    list_moto_modules_once()  # idempotent: the listed names stay, nothing is read again
    assert list(backends.list_of_moto_modules()) == listed


def test_a_handler_class_s_methods_are_moto_s_and_listed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from moto.core import responses, utils
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    list_response_methods_once()
    for handler in (SQSResponse, DynamoHandler):
        assert responses.method_names_from_class(handler) == utils.method_names_from_class(handler)
    assert "get_item" in responses.method_names_from_class(DynamoHandler)

    def no_listing(*_: object, **__: object) -> list[object]:
        raise AssertionError("moto listed a class's members again")

    monkeypatch.setattr(inspect, "getmembers", no_listing)
    listed = responses.method_names_from_class(SQSResponse)
    assert "receive_message" in listed
    listed.clear()  # a caller that changes its copy changes nothing for the next one
    assert "receive_message" in responses.method_names_from_class(SQSResponse)
    list_response_methods_once()  # idempotent
    assert "receive_message" in responses.method_names_from_class(SQSResponse)
