"""The page's own long-polls of its two SQS queues, by the presigned receives the server hands out.

The join answer carries one URL per queue (``receive_urls``: url, expires_at, expires_in_s); every
heartbeat answer carries fresh ones. This module keeps the newest of each, says when one is too
close to its expiry to start a long-poll with (so the page renews first instead of being refused
mid-wait), and turns SQS's XML answer into (receipt handle, body) pairs or an ``SqsResponseError``.
Pure: the session manager does the I/O. The expiry is kept on the page's own clock
(``expires_in_s`` from the answer's moment), so the page and the server need not agree on the time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from web_py.sqs_xml import SqsResponseError, parse_error, parse_receive_response

QUEUES = ("history", "live")
# A long-poll started with less validity than its wait plus this much is renewed first.
RENEW_MARGIN_S = 10.0


@dataclass(frozen=True)
class ReceiveUrl:
    url: str
    valid_until: float  # on the page's clock


class DirectReceiver:
    def __init__(self) -> None:
        self._urls: dict[str, ReceiveUrl] = {}

    @property
    def available(self) -> bool:
        return all(queue in self._urls for queue in QUEUES)

    def forget(self) -> None:
        self._urls.clear()

    def update(self, answer: Any, now: float) -> bool:
        """Take the ``receive_urls`` of a join or heartbeat answer; False when it has none usable."""
        urls = answer.get("receive_urls") if isinstance(answer, Mapping) else None
        if not isinstance(urls, Mapping):
            return False
        fresh: dict[str, ReceiveUrl] = {}
        for queue in QUEUES:
            entry = urls.get(queue)
            if not isinstance(entry, Mapping):
                return False
            url, expires_in = entry.get("url"), entry.get("expires_in_s")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                return False
            if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
                return False
            fresh[queue] = ReceiveUrl(url, now + float(expires_in))
        self._urls = fresh
        return True

    def url_for(self, queue: str, wait_s: float, now: float) -> str | None:
        """The URL to long-poll ``queue`` with now, or None when it must be renewed first."""
        entry = self._urls.get(queue)
        if entry is None or entry.valid_until - now < wait_s + RENEW_MARGIN_S:
            return None
        return entry.url

    def expiring(self, wait_s: float, now: float) -> bool:
        return any(self.url_for(queue, wait_s, now) is None for queue in QUEUES)


def received(status: int, text: str | None) -> list[tuple[str, Any]]:
    """SQS's answer as (receipt handle, body) pairs; a body that is not JSON stays a string (the
    session manager drops it as malformed). Raises ``SqsResponseError`` for a refusal."""
    if text is None:
        raise SqsResponseError("InvalidResponse", f"HTTP {status} with no body")
    if status != 200:
        raise parse_error(text) if text.lstrip().startswith("<") else SqsResponseError(
            "InvalidResponse", f"HTTP {status}: {text[:200]!r}")
    pairs: list[tuple[str, Any]] = []
    for message in parse_receive_response(text):
        try:
            body: Any = json.loads(message.body)
        except ValueError:
            body = message.body
        pairs.append((message.receipt_handle, body))
    return pairs
