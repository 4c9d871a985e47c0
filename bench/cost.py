"""The AWS cost model, from a run: viewers watch one session while the AI publishes a price a second.

Counted during the run:
* our server: REST requests by path and the seconds they held it (Lambda duration's stand-in);
* SQS: the browsers' own receives (the local AWS gateway counts them) and every SQS request the
  server makes, counted at its queue port (``SqsRequests``): a ``SendMessage`` per event per
  viewer, a ``DeleteMessageBatch`` per ten handles a heartbeat acknowledges, histories and the
  fallback poll; S3: the browsers' document reads.
Then dollars per viewer-month at the list prices below. Only what a viewer adds is charged to it;
the publish itself (the MCP call, its S3 write, DynamoDB) is per session and reported apart.
The page's loop is the shipped ``SessionManager`` in CPython (``PageRunner``), polling directly.

Beside the figure, from the same run: its **floor**. With a queue per browser every update costs
each viewer at least one ``SendMessage`` and one ``ReceiveMessage``, whatever else is done; the
floor prices those two requests for the updates the run published. Then the same per-viewer
counts, per update and per heartbeat, **projected to other update rates** (``project``): the
design's cost is (updates x their SQS requests) + (heartbeats x their REST call, Lambda time and
DynamoDB calls), so the run's unit counts give every rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bench.chromium import McpCaller
from bench.harness import new_session
from chalice_app.ports import BrowserQueues, QueuePair
from chalice_app.receive_urls import LIVE_WAIT_S
from chalice_app.sessions import SessionService
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner
from web_py.messages import Envelope
from web_py.pending_acks import MAX_ACKS_PER_CALL
from web_py.session_manager import Metrics

MONTH_S = 30 * 24 * 3600
SQS_BATCH = 10
# List prices (USD), us-east-1, as published by AWS on its pricing pages (aws.amazon.com/sqs/pricing,
# /api-gateway/pricing, /lambda/pricing, /s3/pricing, /dynamodb/pricing), as known in 2025-2026; not
# re-checked from this machine (no internet). Free tiers ignored. The product's region (us-west-1)
# may differ a little.
PRICES = {
    "sqs_fifo_per_million": 0.50,  # each 64 KB chunk of a request counts as one request
    "sqs_standard_per_million": 0.40,  # (not used by the product: for the floor of a standard queue)
    "api_gateway_rest_per_million": 3.50,  # REST API (what Chalice deploys), first 333 M requests a month
    "api_gateway_http_per_million": 1.00,  # HTTP API, first 300 M (an alternative, priced apart)
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
# Update rates the figure is projected to (updates per second): the run's, one every 10 s, one a
# minute, none (an idle viewer).
RATES = (1.0, 0.1, 1 / 60, 0.0)


class SqsRequests:
    """The server's queue port, passed through, counting the SQS requests each call makes."""

    def __init__(self, inner: BrowserQueues) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.counted: Counter[str] = Counter()

    def _count(self, action: str, requests: int = 1) -> None:
        with self._lock:  # the fan-out sends from a thread pool
            self.counted[action] += requests

    def names(self, session_id: str, client_id: str) -> tuple[str, str]:
        return self._inner.names(session_id, client_id)

    def create(self, session_id: str, client_id: str) -> QueuePair:
        self._count("CreateQueue", 2)
        return self._inner.create(session_id, client_id)

    def exists(self, url: str) -> bool:
        self._count("GetQueueAttributes")
        return self._inner.exists(url)

    def send(self, url: str, envelope: Envelope, dedup_id: str) -> None:
        self._count("SendMessage")
        self._inner.send(url, envelope, dedup_id)

    def send_all(self, url: str, envelopes: Sequence[Envelope], dedup_prefix: str) -> None:
        self._count("SendMessageBatch", math.ceil(len(envelopes) / SQS_BATCH))
        self._inner.send_all(url, envelopes, dedup_prefix)

    def receive(self, url: str, wait_seconds: int, max_messages: int, *, visibility_timeout_s: int | None = None
                ) -> list[tuple[str, str]]:
        self._count("ReceiveMessage")
        return self._inner.receive(url, wait_seconds, max_messages, visibility_timeout_s=visibility_timeout_s)

    def delete(self, url: str, receipt_handles: Sequence[str]) -> int:
        self._count("DeleteMessageBatch")  # the service hands it at most ten
        return self._inner.delete(url, receipt_handles)

    def delete_queue(self, url: str) -> None:
        self._count("DeleteQueue")
        self._inner.delete_queue(url)


@contextmanager
def counting_sqs(service: SessionService) -> Iterator[SqsRequests]:
    counter = SqsRequests(service.queues)
    service.queues = counter
    try:
        yield counter
    finally:
        service.queues = counter._inner


def measure(stack: LocalStack, *, viewers: int = 4, seconds: float = 120.0, rate: float = 1.0,
            idle_seconds: float = 60.0) -> dict[str, Any]:
    session_id = new_session(stack, "cost")
    mcp = McpCaller(stack.mcp_url)
    try:
        mcp.call("webpage_update_hash_price_display", {"session_id": session_id})
        with PageRunner(stack.base_url) as pages, counting_sqs(stack.service) as sqs:
            tabs = [pages.open(session_id) for _ in range(viewers)]
            for tab in tabs:
                tab.catch_up(1)
            time.sleep(2.0)  # every tab settled in its live long-poll
            idle = _idle(stack, viewers, idle_seconds)
            rest, held, aws, server_sqs = (stack.requests.copy(), dict(stack.request_seconds),
                                           stack.gateway_requests.copy(), sqs.counted.copy())
            metrics_before = [_ack_metrics(tab.manager.metrics) for tab in tabs]
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
            sent = sqs.counted - server_sqs
            metrics = [tab.manager.metrics for tab in tabs]
            acks = [(m.ack_calls - b[0], m.acks_sent - b[1]) for m, b in zip(metrics, metrics_before, strict=True)]
    finally:
        mcp.close()
    model = cost_model(viewers=viewers, seconds=elapsed, published=published, rest=counted, rest_seconds=spent,
                       gateway=gateway, server_sqs=sent, heartbeat_interval_s=stack.settings.heartbeat_interval_s,
                       documents_fetched=sum(m.documents_fetched for m in metrics),
                       inline=sum(m.inline_documents for m in metrics),
                       ack_calls=sum(calls for calls, _ in acks), acks_sent=sum(sent for _, sent in acks))
    model["idle_viewer"] = idle
    return model


def _ack_metrics(metrics: Metrics) -> tuple[int, int]:
    return metrics.ack_calls, metrics.acks_sent


def _idle(stack: LocalStack, viewers: int, seconds: float) -> dict[str, Any]:
    """What the open pages cost while nothing is published: their calls to us and to SQS."""
    rest, aws = stack.requests.copy(), stack.gateway_requests.copy()
    time.sleep(seconds)
    minutes = viewers * seconds / 60
    counted, gateway = stack.requests - rest, stack.gateway_requests - aws
    return {"viewers": viewers, "seconds": seconds, "rest_by_path": dict(counted),
            "rest_requests_per_viewer_minute": round(sum(counted.values()) / minutes, 2),
            "sqs_receives_per_viewer_minute": round(gateway["sqs"] / minutes, 2)}


def cost_model(*, viewers: int, seconds: float, published: int, rest: Counter[str], rest_seconds: dict[str, float],
               gateway: Counter[str], server_sqs: Counter[str], heartbeat_interval_s: float, documents_fetched: int,
               inline: int, ack_calls: int, acks_sent: int) -> dict[str, Any]:
    """Per-viewer counts of the run, scaled to a month of watching, priced; its floor; other rates."""
    viewer_paths = [p for p in rest if p.startswith("/api/webpage_") and p != "/api/webpage_create_session"]
    rest_per_viewer = sum(rest[p] for p in viewer_paths) / viewers
    rest_s_per_viewer = sum(rest_seconds.get(p, 0.0) for p in viewer_paths) / viewers
    heartbeats = rest["/api/webpage_send_heartbeat"]
    sqs_by_action = Counter(server_sqs)
    sqs_by_action["ReceiveMessage (the browsers', presigned)"] = gateway["sqs"]
    sqs_per_viewer = sum(sqs_by_action.values()) / viewers
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
    dollars = _priced(month)
    updates_month = published * scale
    floor_dollars = round(2 * updates_month / 1e6 * PRICES["sqs_fifo_per_million"], 3)
    floor = {
        "what": "one SendMessage + one ReceiveMessage per update per viewer (a queue per browser)",
        "sqs_requests": round(2 * updates_month),
        "dollars_fifo": floor_dollars,
        "dollars_standard_queue": round(2 * updates_month / 1e6 * PRICES["sqs_standard_per_million"], 3),
    }
    total = sum(dollars.values())
    # Unit counts the projection takes from the run: Lambda time per call, S3 reads per update.
    lambda_s_per_call = rest_s_per_viewer / max(rest_per_viewer, 1e-9)
    s3_per_update = s3_per_viewer / max(published, 1)
    return {
        "viewers": viewers, "seconds": round(seconds, 1), "published": published, "prices": PRICES,
        "counted": {"rest_by_path": dict(rest), "rest_seconds_by_path": rest_seconds,
                    "sqs_by_action": dict(sqs_by_action), "browser_aws_by_service": dict(gateway),
                    "documents_fetched": documents_fetched, "inline_documents": inline,
                    "heartbeats": heartbeats, "ack_calls": ack_calls, "acks_sent": acks_sent},
        "per_viewer_minute": {"rest_requests": round(rest_per_viewer * 60 / seconds, 2),
                              "rest_seconds": round(rest_s_per_viewer * 60 / seconds, 3),
                              "sqs_requests": round(sqs_per_viewer * 60 / seconds, 2),
                              "sqs_by_action": {k: round(v / viewers * 60 / seconds, 2)
                                                for k, v in sqs_by_action.items()},
                              "s3_gets": round(s3_per_viewer * 60 / seconds, 2),
                              "updates": round(published * 60 / seconds, 2)},
        "per_viewer_month": {k: round(v) for k, v in month.items()},
        "dollars_per_viewer_month": {k: round(v, 3) for k, v in dollars.items()},
        "total_dollars_per_viewer_month": round(total, 2),
        "floor_per_viewer_month": floor,
        "over_floor": round(total / floor_dollars, 2) if floor_dollars else None,
        "unit_counts": {"lambda_s_per_call": round(lambda_s_per_call, 4),
                        "sends_per_update": round(server_sqs["SendMessage"] / viewers / max(published, 1), 3),
                        "s3_gets_per_update": round(s3_per_update, 3), "heartbeat_interval_s": heartbeat_interval_s},
        "at_rates": [project(r, heartbeat_interval_s=heartbeat_interval_s, lambda_s_per_call=lambda_s_per_call,
                             s3_gets_per_update=s3_per_update) for r in RATES],
    }


def _priced(month: dict[str, float], *, api_price: str = "api_gateway_rest_per_million") -> dict[str, float]:
    return {
        "api_gateway": month["rest_requests"] / 1e6 * PRICES[api_price],
        "lambda_requests": month["rest_requests"] / 1e6 * PRICES["lambda_requests_per_million"],
        "lambda_duration": month["lambda_gb_s"] * PRICES["lambda_gb_second"],
        "sqs": month["sqs_requests"] / 1e6 * PRICES["sqs_fifo_per_million"],
        "s3": month["s3_gets"] / 1e3 * PRICES["s3_get_per_thousand"],
        "dynamodb": month["dynamodb_reads"] / 1e6 * PRICES["dynamodb_read_per_million"]
        + month["dynamodb_writes"] / 1e6 * PRICES["dynamodb_write_per_million"],
    }


def project(rate: float, *, heartbeat_interval_s: float, lambda_s_per_call: float, s3_gets_per_update: float = 0.0,
            live_wait_s: float = LIVE_WAIT_S, acks_per_call: int = MAX_ACKS_PER_CALL) -> dict[str, Any]:
    """A viewer-month at ``rate`` updates a second, by the design's own rules:

    * each update: one SendMessage to the viewer's queue, and one ReceiveMessage that it ends; with
      less than one update per long-poll wait, the receives run their full wait instead (1 / wait);
    * one heartbeat per interval (more only when more handles wait than one call carries), each a
      REST call, its Lambda time and 3 DynamoDB calls, and one DeleteMessageBatch per ten handles
      it carries (a beat with a handle or two still costs one; a beat with none, none).
    """
    calls = max(1 / heartbeat_interval_s, rate / acks_per_call)
    handles = rate / calls
    deletes = calls * (math.ceil(handles / SQS_BATCH) if handles >= 1 else handles)
    receives = max(rate, 1 / live_wait_s)
    per_second = {"sends": rate, "receives": receives, "deletes": deletes, "rest": calls}
    month = {
        "rest_requests": calls * MONTH_S,
        "lambda_gb_s": calls * MONTH_S * lambda_s_per_call * PRICES["lambda_memory_gb"],
        "sqs_requests": (rate + receives + deletes) * MONTH_S,
        "s3_gets": rate * s3_gets_per_update * MONTH_S,
        "dynamodb_reads": calls * MONTH_S * HEARTBEAT_DYNAMODB["reads"],
        "dynamodb_writes": calls * MONTH_S * HEARTBEAT_DYNAMODB["writes"],
    }
    dollars = _priced(month)
    with_http_api = _priced(month, api_price="api_gateway_http_per_million")
    floor = 2 * rate * MONTH_S / 1e6 * PRICES["sqs_fifo_per_million"]
    return {
        "updates_per_s": round(rate, 4), "updates_per_minute": round(rate * 60, 2),
        "per_viewer_minute": {k: round(v * 60, 2) for k, v in per_second.items()},
        "per_viewer_month": {k: round(v) for k, v in month.items()},
        "dollars_per_viewer_month": {k: round(v, 3) for k, v in dollars.items()},
        "total_dollars_per_viewer_month": round(sum(dollars.values()), 2),
        "total_with_http_api": round(sum(with_http_api.values()), 2),
        "floor_dollars_fifo": round(floor, 3),
    }
