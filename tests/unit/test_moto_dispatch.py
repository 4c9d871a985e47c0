"""The local stack's one-time listing of moto's service modules answers as moto's own did."""

from __future__ import annotations

import os

import pytest

from pbfm_tooling.moto_dispatch import list_moto_modules_once


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
