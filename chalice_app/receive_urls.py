"""The presigned receives a browser long-polls its own two queues with, straight from SQS.

A join hands them out; every heartbeat answer hands out fresh ones, long before the old ones expire
(their lifetime is minutes, the heartbeat's interval seconds), so a page never waits on our server
for news. Each URL reads one queue with fixed parameters (``chalice_app/presign.py``): the history
queue with short waits (it is drained once, at join), the live queue with SQS's longest wait and
a visibility timeout that outlasts a few heartbeat intervals: the page acknowledges live messages
with its next heartbeat, and until then SQS must not hand them out again.
Signed with the server's own credentials as they are at that moment (a Lambda role's rotate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.credentials import Credentials

from chalice_app.presign import MAX_EXPIRES_S, MAX_MESSAGES, MAX_WAIT_S, PresignedReceive, presign_receive_message

HISTORY_WAIT_S = 5
LIVE_WAIT_S = MAX_WAIT_S


@dataclass(frozen=True)
class ReceiveUrls:
    live: PresignedReceive
    history: PresignedReceive


class ReceiveUrlSigner:
    def __init__(self, credentials: Callable[[], Credentials], *, region: str, endpoint: str | None,
                 lifetime_s: int = MAX_EXPIRES_S, live_visibility_s: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not 1 <= lifetime_s <= MAX_EXPIRES_S:
            raise ValueError(f"receive URL lifetime must be 1..{MAX_EXPIRES_S} s, not {lifetime_s}")
        self._credentials = credentials
        self.region = region
        self.endpoint = endpoint
        self.lifetime_s = lifetime_s
        self.live_visibility_s = live_visibility_s  # None: the queue's own
        self._clock = clock

    def sign(self, live_queue_url: str, history_queue_url: str) -> ReceiveUrls:
        credentials = self._credentials()

        def one(queue_url: str, wait_s: int, visibility_s: int | None) -> PresignedReceive:
            return presign_receive_message(
                queue_url, access_key=credentials.access_key, secret_key=credentials.secret_key,
                session_token=credentials.token, region=self.region, wait_time_s=wait_s,
                max_messages=MAX_MESSAGES, visibility_timeout_s=visibility_s, expires_s=self.lifetime_s,
                endpoint=self.endpoint, clock=self._clock,
            )

        return ReceiveUrls(live=one(live_queue_url, LIVE_WAIT_S, self.live_visibility_s),
                           history=one(history_queue_url, HISTORY_WAIT_S, None))
