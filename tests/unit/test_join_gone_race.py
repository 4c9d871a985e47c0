"""A join answered 410 stops the page only when the session has really ended.

The server also answers a join 410 when the browser's queue vanished while it joined (the sweep
or a restart of the local stack raced it). Before, the page took every such 410 for "ended" and
stopped for good; the chaos run's restart found it. The page's own loop, over a scripted server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from web_py.session_manager import SessionManager

JOINED = {"client_id": "aaaaaaaaaaaa", "role": "master", "master_client_id": "aaaaaaaaaaaa", "resumed": False,
          "last_seq": 0, "heartbeat_interval_s": 5.0, "heartbeat_timeout_s": 15.0, "incarnation": "abcd1234"}
GONE = {"error": "gone", "message": "This browser's queue disappeared while joining; join again."}


class Server:
    def __init__(self, status: str, gone_joins: int) -> None:
        self.status, self.gone_joins = status, gone_joins
        self.calls: list[str] = []
        self.manager: SessionManager | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        operation = path.rsplit("/", 1)[1]
        self.calls.append(operation)
        if operation == "webpage_join_session":
            if self.gone_joins:
                self.gone_joins -= 1
                return 410, GONE
            return 200, JOINED
        if operation == "webpage_get_session_status":
            return 200, {"session_id": "s", "status": self.status, "last_seq": 0}
        if operation == "webpage_get_events":
            return 200, {"events": [], "last_seq": 0}
        if operation == "webpage_poll_queue":
            assert self.manager is not None
            self.manager.stop()  # one poll after a successful join is enough
            return 200, {"messages": []}
        return 200, {}

    async def get_json(self, url: str) -> tuple[int, Any]:
        return 404, None


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def run(server: Server) -> SessionManager:
    manager = SessionManager("s", server, sleep=_no_sleep, jitter=lambda: 0.5)
    server.manager = manager
    asyncio.run(asyncio.wait_for(manager.poll_loop(), 10))
    return manager


def test_a_410_join_of_a_live_session_is_retried_not_taken_for_the_end() -> None:
    server = Server("active", gone_joins=2)
    manager = run(server)
    assert manager.joined is not None and manager.joined.client_id == "aaaaaaaaaaaa"
    assert manager.view.connection != "ended" and not manager.state.ended
    assert server.calls.count("webpage_join_session") == 3
    assert server.calls.count("webpage_get_session_status") == 2


def test_a_410_join_of_an_ended_session_ends_the_page() -> None:
    server = Server("ended", gone_joins=1)
    manager = run(server)
    assert manager.joined is None and manager.view.connection == "ended"
    assert server.calls.count("webpage_join_session") == 1
