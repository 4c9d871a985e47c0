"""Receipt handles of messages the page has applied but not yet acknowledged, and when they must go.

The page acknowledges with its heartbeat: one short call per heartbeat interval carries every handle
gathered since, and the server deletes them (``DeleteMessageBatch``, ten per SQS request). Between
beats the handles wait here, in arrival order, each once. One call carries at most ``limit`` of
them: that bounds the request body (a receipt handle may be 2 KiB) and the server's work per call.
When more are waiting than one call may carry, the page sends a heartbeat early rather than let
them age towards the receive's visibility timeout (after which SQS would hand the messages out
again). History handles go first: the history queue is one FIFO message group, so its next batch
comes only once the previous one is deleted.

Pure (no I/O): the session manager makes the calls, hands the handles it took back when a call
fails, and forgets the live ones when it joins again (``forget_live``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

QUEUES = ("history", "live")
# Handles one heartbeat carries at most: 50 x 2 KiB stays far below the server's 256 KB body limit,
# and five DeleteMessageBatch calls per queue keep the call short. At one update a second and a
# 15 s heartbeat the page gathers 15 per beat; the bound only bites above ~3 updates a second.
MAX_ACKS_PER_CALL = 50


class PendingAcks:
    def __init__(self, limit: int = MAX_ACKS_PER_CALL) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        # dicts as ordered sets: arrival order, no repeats (SQS refuses a batch naming a handle twice).
        self._handles: dict[str, dict[str, None]] = {queue: {} for queue in QUEUES}

    def add(self, queue: str, handle: str) -> None:
        self._handles[queue][handle] = None

    def count(self, queue: str | None = None) -> int:
        if queue is not None:
            return len(self._handles[queue])
        return sum(len(handles) for handles in self._handles.values())

    @property
    def full(self) -> bool:
        """As many are waiting as one call may carry: send them now, not at the next beat."""
        return self.count() >= self.limit

    def take(self) -> dict[str, list[str]]:
        """Up to ``limit`` handles, oldest first, history before live; they leave the pending set.

        Only queues with handles appear in the answer; ``{}`` when nothing is pending.
        """
        taken: dict[str, list[str]] = {}
        room = self.limit
        for queue in QUEUES:
            pending = self._handles[queue]
            if not pending or room == 0:
                continue
            batch = list(pending)[:room]
            for handle in batch:
                del pending[handle]
            taken[queue] = batch
            room -= len(batch)
        return taken

    def give_back(self, taken: Mapping[str, Sequence[str]]) -> None:
        """Put handles taken for a call that failed back in front: they are older than any added since."""
        for queue, handles in taken.items():
            later = self._handles[queue]
            self._handles[queue] = dict.fromkeys([*handles, *later])

    def clear(self) -> None:
        for handles in self._handles.values():
            handles.clear()

    def forget_live(self) -> None:
        """A rejoin: the live handles go (what they named comes back and is dropped as applied). The
        history handles stay for the next beat: until they are deleted, the history queue (one message
        group) holds the rejoin's new history back behind them for a whole visibility timeout. A
        handle of a queue since re-created fails harmlessly on the server."""
        self._handles["live"].clear()
