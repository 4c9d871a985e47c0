"""Stacks in one process share moto's one AWS: a later stack must not lock out an earlier one's pages."""

from __future__ import annotations

import httpx

from pbfm_tooling.local_stack import LocalStack
from tests.conftest import TEST_OVERRIDES


def read_with_origin(url: str, origin: str) -> httpx.Response:
    return httpx.get(url, headers={"Origin": origin})


def test_a_second_stack_keeps_the_first_stacks_origin_allowed(stack: LocalStack) -> None:
    key = "sessions/cors-check/document.json"
    stack.service.blobs.put_json(key, {"ok": True})
    url = stack.service.blobs.presign(key)
    assert read_with_origin(url, stack.base_url).headers["access-control-allow-origin"] == stack.base_url

    with LocalStack(overrides=TEST_OVERRIDES) as second:
        assert second.settings.bucket_name == stack.settings.bucket_name  # the shared case
        # The bucket's rule is replaced on every start; both pages' origins must be in it.
        assert read_with_origin(url, stack.base_url).headers["access-control-allow-origin"] == stack.base_url
        second_url = second.service.blobs.presign(key)
        allowed = read_with_origin(second_url, second.base_url).headers["access-control-allow-origin"]
        assert allowed == second.base_url
        assert "access-control-allow-origin" not in read_with_origin(url, "http://evil.example").headers
