"""Behind API Gateway's default URL every route sits under the stage ("/api/..."); the page follows.

Drives the app as Lambda would: an API-Gateway-proxy event whose requestContext.path carries the
stage prefix, handed to the Chalice app object (the one the local stack serves, on its settings).
"""

from __future__ import annotations

from typing import Any

from chalice_app.static_site import base_path
from pbfm_tooling.local_stack import LocalStack


class LambdaContext:
    function_name = "pb-fm-webpage-dev"
    memory_limit_in_mb = 512
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def proxy_event(path: str, resource: str, stage_path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "resource": resource, "path": path, "httpMethod": "GET",
        "headers": {"accept": "text/html", "host": "abc.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": params, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": resource, "httpMethod": "GET", "path": stage_path, "stage": "api",
                           "identity": {"sourceIp": "203.0.113.9"}},
    }


def test_base_path_is_what_precedes_the_route() -> None:
    assert base_path("/session/demo", "/session/demo") == ""
    assert base_path("/api/session/demo", "/session/demo") == "/api"
    assert base_path("/api/", "/") == "/api"
    assert base_path("/", "/") == ""
    assert base_path('/"><script>/session/x', "/session/x") == ""  # never echoes anything odd


def test_page_links_and_calls_carry_the_stage_prefix(stack: LocalStack) -> None:
    response = stack.app(proxy_event("/session/demo", "/session/{session_id}", "/api/session/demo",
                               {"session_id": "demo"}), LambdaContext())
    assert response["statusCode"] == 200
    body = response["body"]
    assert 'config="/api/pyscript.toml" src="/api/web_py/main.py"' in body
    assert 'href="/api/static/page.css"' in body and 'data-base="/api"' in body
    assert "/api/vendor/pyscript/" in body

    toml = stack.app(proxy_event("/pyscript.toml", "/pyscript.toml", "/api/pyscript.toml"), LambdaContext())["body"]
    assert 'interpreter = "/api/vendor/pyodide/' in toml


def test_without_a_stage_prefix_nothing_changes(stack: LocalStack) -> None:
    response = stack.app(proxy_event("/session/demo", "/session/{session_id}", "/session/demo",
                               {"session_id": "demo"}), LambdaContext())
    assert 'config="/pyscript.toml"' in response["body"] and 'data-base=""' in response["body"]
