"""A write the stack acknowledges while it stops is in its saved state; one it cannot keep it refuses.

The app's requests run in threads of their own, and a stop does not wait for them: a publish whose
write lands after the stop's save would be answered "stored" and yet be gone after the restart (its
sequence number then given to another event). Here one publish is held inside the app until the
stop has saved, then let go, and the table is not deleted before that write has come back. Either
answer is correct, "stored" with the event kept across the restart, or an error; "stored" and lost
is not.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalice_app.event_store import DynamoEventStore
from pbfm_tooling.local_stack import LocalStack
from tests.browser.stack_client import McpError, mcp_call, rest_call
from tests.conftest import TEST_OVERRIDES
from web_py.messages import MessageType


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    own = secrets.token_hex(3)
    overrides = {**TEST_OVERRIDES, "PBFM_TABLE": f"inflight-{own}", "PBFM_BUCKET": f"inflight-{own}",
                 "PBFM_QUEUE_PREFIX": f"inflight{own}"}
    # No periodic save: the stop's own save is the one that counts here.
    with LocalStack(overrides=overrides, state_dir=tmp_path / "state", save_every_s=3600) as running:
        yield running


def test_a_publish_answered_during_a_stop_is_kept_or_refused(stack: LocalStack,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sid = "inflight-" + secrets.token_hex(3)
    rest_call(stack.base_url, "webpage_create_session", session_id=sid)
    before = mcp_call(stack.base_url, "webpage_update_hash_price_display", session_id=sid)["seq"]

    held, saving, saved, written = (threading.Event() for _ in range(4))
    append = DynamoEventStore.append

    def held_append(self: DynamoEventStore, *args: Any, **kwargs: Any) -> Any:
        if held.is_set():
            return append(self, *args, **kwargs)
        held.set()
        # Until the stop saves (a stop that first waits for this request never does: go on after 3 s).
        if saving.wait(3):
            saved.wait(10)
        try:
            return append(self, *args, **kwargs)
        finally:
            written.set()

    save, forget = stack.save, stack._forget_aws

    def observed_save() -> None:
        saving.set()
        save()
        saved.set()

    def forget_after_the_write() -> None:
        written.wait(10)
        forget()

    monkeypatch.setattr(DynamoEventStore, "append", held_append)
    monkeypatch.setattr(stack, "save", observed_save)
    monkeypatch.setattr(stack, "_forget_aws", forget_after_the_write)

    answer: dict[str, Any] = {}

    def publish() -> None:
        try:
            answer["seq"] = mcp_call(stack.base_url, "webpage_update_hash_price_display", session_id=sid)["seq"]
        except (McpError, OSError) as exc:
            answer["error"] = repr(exc)

    publisher = threading.Thread(target=publish)
    publisher.start()
    assert held.wait(10), "the publish never reached its append"
    stack.restart()
    publisher.join(30)
    assert not publisher.is_alive() and written.is_set() and answer, answer

    prices = [e.seq for e in stack.service.store.events_after(sid, 0)
              if e.type == MessageType.PRICE_UPDATE and e.seq > before]
    if "seq" in answer:
        assert prices == [answer["seq"]], f"answered stored as {answer['seq']}, kept after the restart: {prices}"
    else:
        assert prices == [], answer
