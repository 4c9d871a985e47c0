"""The AWS cost model, from a run: viewers watch one session while the AI publishes a price a second.

Counted during the run (the local stack counts per path; its AWS gateway per service):
* our server: REST requests by path and the seconds they held it (Lambda duration's stand-in);
* SQS: the browsers' direct receives (gateway), the fan-out sends (one per event per viewer), the
  deletes (one DeleteMessageBatch per acknowledgement call); S3: the browsers' document reads.
Then dollars per viewer-month at the list prices below. Only what a viewer adds is charged to it;
the publish itself (the MCP call, its S3 write, DynamoDB) is per session and reported apart.
The page's loop is the shipped ``SessionManager`` in CPython (``PageRunner``), polling directly.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.chromium import McpCaller
from bench.harness import new_session
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner

MONTH_S = 30 * 24 * 3600
# List prices (USD), us-east-1, as published by AWS on its pricing pages (aws.amazon.com/sqs/pricing,
# /api-gateway/pricing, /lambda/pricing, /s3/pricing, /dynamodb/pricing), as known in 2025-2026; not
# re-checked from this machine (no internet). Free tiers ignored. The product's region (us-west-1)
# may differ a little.
PRICES = {
    "sqs_fifo_per_million": 0.50,  # each 64 KB chunk of a request counts as one request
    "api_gateway_rest_per_million": 3.50,  # REST API, first 333 M requests a month
    "lambda_requests_per_million": 0.20,
    "lambda_gb_second": 0.0000166667,  # x86
    "lambda_memory_gb": 0.5,  # the deployed function's 512 MB
    "s3_get_per_thousand": 0.0004,
    "dynamodb_write_per_million": 0.625,  # on-demand write request units
    "dynamodb_read_per_million": 0.125,  # on-demand read request units (strongly consistent: 1 per 4 KB)
}
# DynamoDB calls per heartbeat, read off chalice_app/sessions.py (SessionService.heartbeat): the
# client's item read, its touch (a write) and the session's METADATA read. Not counted at run time.
HEARTBEAT_DYNAMODB = {"reads": 2, "writes": 1}


def measure(stack: LocalStack, *, viewers: int = 4, seconds: float = 120.0, rate: float = 1.0) -> dict[str, Any]:
    session_id = new_session(stack, "cost")
    mcp = McpCaller(stack.mcp_url)
    try:
        mcp.call("webpage_update_hash_price_display", {"session_id": session_id})
        with PageRunner(stack.base_url) as pages:
            tabs = [pages.open(session_id) for _ in range(viewers)]
            for tab in tabs:
                tab.catch_up(1)
            time.sleep(2.0)  # every tab settled in its live long-poll
            rest, held, aws = stack.requests.copy(), dict(stack.request_seconds), stack.gateway_requests.copy()
            started = time.monotonic()
            published, last = 0, 0
            while time.monotonic() - started < seconds:
                _, result = mcp.call("webpage_update_hash_price_display", {"session_id": session_id})
                published, last = published + 1, int(result["seq"])
                time.sleep(max(0.0, published / rate - (time.monotonic() - started)))
            for tab in tabs:
                tab.catch_up(last, timeout_s=60)
            elapsed = time.monotonic() - started
            counted = stack.requests - rest
            spent = {path: round(total - held.get(path, 0.0), 3) for path, total in stack.request_seconds.items()
                     if total - held.get(path, 0.0) > 0}
            gateway = stack.gateway_requests - aws
            metrics = [tab.manager.metrics for tab in tabs]
    finally:
        mcp.close()
    return cost_model(viewers=viewers, seconds=elapsed, published=published, rest=counted, rest_seconds=spent,
                      gateway=gateway, documents_fetched=sum(m.documents_fetched for m in metrics),
                      inline=sum(m.inline_documents for m in metrics),
                      heartbeats=sum(m.heartbeats for m in metrics))


def cost_model(*, viewers: int, seconds: float, published: int, rest: Counter[str], rest_seconds: dict[str, float],
               gateway: Counter[str], documents_fetched: int, inline: int, heartbeats: int) -> dict[str, Any]:
    """Per-viewer counts of the run, scaled to a month of watching, priced."""
    viewer_paths = [p for p in rest if p.startswith("/api/webpage_") and p != "/api/webpage_create_session"]
    rest_per_viewer = sum(rest[p] for p in viewer_paths) / viewers
    rest_s_per_viewer = sum(rest_seconds.get(p, 0.0) for p in viewer_paths) / viewers
    deletes = rest["/api/webpage_delete_message"] / viewers
    sqs_per_viewer = (gateway["sqs"] / viewers) + published + deletes + rest["/api/webpage_poll_queue"] / viewers
    s3_per_viewer = gateway["s3"] / viewers
    scale = MONTH_S / seconds
    month = {
        "rest_requests": rest_per_viewer * scale,
        "lambda_gb_s": rest_s_per_viewer * scale * PRICES["lambda_memory_gb"],
        "sqs_requests": sqs_per_viewer * scale,
        "s3_gets": s3_per_viewer * scale,
        "dynamodb_reads": heartbeats / viewers * HEARTBEAT_DYNAMODB["reads"] * scale,
        "dynamodb_writes": heartbeats / viewers * HEARTBEAT_DYNAMODB["writes"] * scale,
    }
    dollars = {
        "api_gateway": month["rest_requests"] / 1e6 * PRICES["api_gateway_rest_per_million"],
        "lambda_requests": month["rest_requests"] / 1e6 * PRICES["lambda_requests_per_million"],
        "lambda_duration": month["lambda_gb_s"] * PRICES["lambda_gb_second"],
        "sqs": month["sqs_requests"] / 1e6 * PRICES["sqs_fifo_per_million"],
        "s3": month["s3_gets"] / 1e3 * PRICES["s3_get_per_thousand"],
        "dynamodb": month["dynamodb_reads"] / 1e6 * PRICES["dynamodb_read_per_million"]
        + month["dynamodb_writes"] / 1e6 * PRICES["dynamodb_write_per_million"],
    }
    return {
        "viewers": viewers, "seconds": round(seconds, 1), "published": published, "prices": PRICES,
        "counted": {"rest_by_path": dict(rest), "rest_seconds_by_path": rest_seconds,
                    "browser_aws_by_service": dict(gateway), "documents_fetched": documents_fetched,
                    "inline_documents": inline, "heartbeats": heartbeats},
        "per_viewer_minute": {"rest_requests": round(rest_per_viewer * 60 / seconds, 2),
                              "rest_seconds": round(rest_s_per_viewer * 60 / seconds, 3),
                              "sqs_requests": round(sqs_per_viewer * 60 / seconds, 2),
                              "s3_gets": round(s3_per_viewer * 60 / seconds, 2)},
        "per_viewer_month": {k: round(v) for k, v in month.items()},
        "dollars_per_viewer_month": {k: round(v, 3) for k, v in dollars.items()},
        "total_dollars_per_viewer_month": round(sum(dollars.values()), 2),
    }
