"""Absolute page links from the request (Host, X-Forwarded-Proto, stage prefix) or the configured base."""

from __future__ import annotations

import pytest

from chalice_app.page_links import PageLinks, links_for_request


@pytest.mark.parametrize(("headers", "request_path", "expected"), [
    ({"Host": "127.0.0.1:8000"}, "/mcp", "http://127.0.0.1:8000/session/team"),
    ({"host": "abc.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https"}, "/api/mcp",
     "https://abc.execute-api.us-east-1.amazonaws.com/api/session/team"),
    ({"Host": "pages.example.com", "X-Forwarded-Proto": "https, http"}, "/mcp", "https://pages.example.com/session/team"),
    ({"Host": "[::1]:9000"}, "/mcp", "http://[::1]:9000/session/team"),
    # Junk in Host never becomes a URL: the link stays relative.
    ({"Host": "evil.example/<script>"}, "/mcp", "/session/team"),
    ({"Host": "a b"}, "/mcp", "/session/team"),
    ({}, "/mcp", "/session/team"),
    ({"Host": "example.com", "X-Forwarded-Proto": "javascript"}, "/mcp", "http://example.com/session/team"),
    # A prefix that is not a plain path is ignored, as the page's own links do.
    ({"Host": "example.com"}, "/a?b/mcp", "http://example.com/session/team"),
])
def test_links_from_the_request(headers: dict[str, str], request_path: str, expected: str) -> None:
    assert links_for_request(None, headers, request_path, "/mcp").page_url("team") == expected


def test_the_configured_public_base_wins() -> None:
    links = links_for_request("https://live.example.com/", {"Host": "internal:8000"}, "/api/mcp", "/mcp")
    assert links.page_url("team") == "https://live.example.com/session/team"


def test_without_a_base_links_are_relative() -> None:
    assert PageLinks().page_url("x") == "/session/x"
