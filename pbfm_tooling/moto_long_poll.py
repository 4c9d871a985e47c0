"""SQS long polls in moto's server spin a core while a FIFO group holds their messages back.

moto's ``receive_message`` loops until its wait ends, and between rounds calls
``Queue.wait_for_messages``, which returns at once whenever the queue has *visible* messages. In a
FIFO queue a visible message may still be undeliverable: its group has a message in flight (our
history queue is one group, a join's batch is in flight until the page deletes it). Then every
round finds nothing and the wait returns at once: the poll burns a whole core for up to 20 s
(seen: 10 core-seconds in one test that re-creates a deleted queue).

The local stack makes such a round wait: until a message is added (moto's only notification,
which wakes the poll at once, as before) or for ``RECHECK_S``, the time a visibility timeout may
run out unnoticed. What a poll returns does not change: moto's loop decides which groups are held
back once per poll, so a group released mid-poll was never served by that poll anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

RECHECK_S = 0.05
_MARK = "_pbfm_waits"


def make_sqs_long_polls_wait() -> None:
    """Idempotent: replaces moto's wait once per process."""
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages
    if getattr(original, _MARK, False):
        return
    Queue.wait_for_messages = _waiting(original)  # type: ignore[method-assign, assignment]


def _waiting(original: Callable[[Any, int], None]) -> Callable[[Any, int], None]:
    @functools.wraps(original)
    def wait_for_messages(queue: Any, timeout: int) -> None:
        with queue._messages_lock:
            if queue.messages:
                # Visible, yet this poll found none it may take: wait for a change, not a spin.
                queue._messages_lock.wait(timeout=min(timeout, RECHECK_S))
            else:
                queue._messages_lock.wait_for(lambda: queue.messages, timeout=timeout)

    setattr(wait_for_messages, _MARK, True)
    return wait_for_messages
