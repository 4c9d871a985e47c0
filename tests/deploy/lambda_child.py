"""Run inside the clean interpreter of ``test_lambda_zip``: what Lambda does with the deployment zip.

Only the unpacked zip and the libraries the Lambda Python runtime provides are importable. The
script drives the handler Lambda would call (``app.app``) with API-Gateway-proxy events and prints
one JSON line per step for the test to check. Standard library only, like the Lambda bootstrap.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import uuid
from typing import Any

TASK_ROOT = sys.argv[1]
# {"api": "app.app", "schedule": "app.sweep_sessions"}: the Handler strings of sam.json.
HANDLERS: dict[str, str] = json.loads(sys.argv[2])


class LambdaContext:
    function_name = "pb-fm-webpage-dev"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "local"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:pb-fm-webpage-dev"
    log_group_name = "/aws/lambda/pb-fm-webpage-dev"
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def route_for(app: Any, path: str) -> tuple[str, dict[str, str] | None]:
    """The route template API Gateway would put in ``resourcePath``, and its path parameters."""
    for template in app.routes:
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
        match = re.match(pattern, path)
        if match:
            return template, (match.groupdict() or None)
    raise LookupError(path)


def proxy_event(app: Any, method: str, path: str, body: Any = None, cookie: str | None = None,
                authorization: str | None = None) -> dict[str, Any]:
    resource, params = route_for(app, path)
    headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "Accept": "*/*",
        "Content-Type": "application/json",
        "X-Forwarded-Proto": "https",
    }
    if cookie:
        headers["Cookie"] = cookie
    if authorization:
        headers["Authorization"] = authorization
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "lambda-child"},
            "domainName": headers["Host"],
            "apiId": "abc123",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def cookie_from(response: dict[str, Any]) -> str | None:
    values = response.get("multiValueHeaders", {}).get("Set-Cookie") or []
    single = response.get("headers", {}).get("Set-Cookie")
    for value in [*values, *([single] if single else [])]:
        return value.split(";", 1)[0]
    return None


def load_handler(spec: str) -> Any:
    """What the Lambda bootstrap does with a Handler string: import the module, take the attribute."""
    module, _, attribute = spec.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def main() -> None:
    handler = load_handler(HANDLERS["api"])
    entry = sys.modules[HANDLERS["api"].rpartition(".")[0]]
    context = LambdaContext()
    report: dict[str, Any] = {
        "app_file": entry.__file__,
        "modules": {
            name: getattr(sys.modules.get(name), "__file__", None)
            for name in ("chalice", "chalice_app", "web_py", "pydantic", "pydantic_core", "boto3")
        },
        "has_mcp": "mcp" in sys.modules,
        # Imported by loading app.py alone: none of the tooling's libraries may be among them.
        # (subprocess is not listed: botocore imports it; test_package checks that our code does not.)
        "tooling_imported": sorted(
            name for name in ("mcp", "moto", "httpx", "playwright", "pbfm_tooling", "bench") if name in sys.modules
        ),
    }

    def call(method: str, path: str, body: Any = None, cookie: str | None = None,
             authorization: str | None = None) -> dict[str, Any]:
        response = handler(proxy_event(handler, method, path, body, cookie, authorization), context)
        return {
            "status": response["statusCode"],
            "body": json.loads(response["body"])
            if response.get("body") and not response.get("isBase64Encoded")
            else None,
            "raw": response,
        }

    # The stage has a token (PBFM_MCP_TOKEN): creating a session over REST needs it.
    refused = call("POST", "/api/webpage_create_session", {"session_id": "lambda-zip", "title": "From the zip"})
    report["create_without_token"] = refused["status"]
    created = call("POST", "/api/webpage_create_session", {"session_id": "lambda-zip", "title": "From the zip"},
                   authorization=f"Bearer {os.environ['PBFM_MCP_TOKEN']}")
    joined = call("POST", "/api/webpage_join_session", {"session_id": "lambda-zip"})
    cookie = cookie_from(joined["raw"])
    polled = call(
        "POST",
        "/api/webpage_poll_queue",
        {"session_id": "lambda-zip", "queue": "history", "wait_seconds": 1, "max_messages": 10},
        cookie,
    )
    page = handler(proxy_event(handler, "GET", "/session/lambda-zip"), context)
    scheduled_event = {
        "version": "0",
        "id": "x",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-27T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }
    try:
        report["swept"] = load_handler(HANDLERS["schedule"])(scheduled_event, context)
    except Exception as exc:  # reported, so the API checks above still show
        report["swept_error"] = f"{type(exc).__name__}: {exc}"
    for name, result in (("created", created), ("joined", joined), ("polled", polled)):
        report[name] = {"status": result["status"], "body": result["body"]}
    report["cookie"] = cookie
    report["page"] = {"status": page["statusCode"], "head": page.get("body", "")[:4000]}
    report["has_mcp"] = "mcp" in sys.modules
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
