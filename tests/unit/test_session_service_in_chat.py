"""The session view inside a chat is a participant the others see, and never master by itself."""

from __future__ import annotations

import pytest

from chalice_app.roles import Role
from chalice_app.sessions import SessionService
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import ManualClock, memory_service
from web_py.messages import Envelope, MessageType

SETTINGS = Settings(heartbeat_timeout_s=15, heartbeat_interval_s=5, stale_after_s=120, participants_every_s=1,
                    price_source="simulated")
SID = "chat-test"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(clock: ManualClock) -> SessionService:
    svc = memory_service(SETTINGS, clock)
    svc.create_session(SID, None)
    return svc


def test_a_view_that_joins_first_is_no_master_and_the_first_browser_is(service: SessionService,
                                                                       clock: ManualClock) -> None:
    view = service.join(SID, None, "view-aaaaaaaaaaaaaaaa", in_chat=True)
    assert view.role is Role.OBSERVER and view.master_client_id is None
    assert service.store.require_session(SID).master_client_id is None
    # Its heartbeats (a sweep's worth of them) do not make it master either.
    for _ in range(4):
        clock.advance(SETTINGS.heartbeat_interval_s)
        role, _session = service.heartbeat(SID, view.client.client_id)
        assert role is Role.OBSERVER
    service.sweep(SID)
    assert service.store.require_session(SID).master_client_id is None
    clock.advance(1)
    browser = service.join(SID, None)
    assert browser.role is Role.MASTER


def test_failover_passes_over_the_view(service: SessionService, clock: ManualClock) -> None:
    master = service.join(SID, None)
    clock.advance(1)
    view = service.join(SID, None, "view-aaaaaaaaaaaaaaaa", in_chat=True)
    clock.advance(1)
    observer = service.join(SID, None)
    # The master falls silent; the view is the longest-connected observer, yet the browser gets the role.
    for _ in range(5):
        clock.advance(SETTINGS.heartbeat_interval_s)
        service.heartbeat(SID, view.client.client_id)
        service.heartbeat(SID, observer.client.client_id)
    assert service.store.require_session(SID).master_client_id == observer.client.client_id
    assert master.client.client_id != observer.client.client_id


def test_with_only_the_view_left_nobody_is_master_until_the_ai_transfers(service: SessionService,
                                                                         clock: ManualClock) -> None:
    master = service.join(SID, None)
    clock.advance(1)
    view = service.join(SID, None, "view-aaaaaaaaaaaaaaaa", in_chat=True)
    for _ in range(5):
        clock.advance(SETTINGS.heartbeat_interval_s)
        service.heartbeat(SID, view.client.client_id)
    service.sweep(SID)
    assert service.store.require_session(SID).master_client_id == master.client.client_id  # silent, not replaced
    previous = service.transfer_control(SID, view.client.client_id)
    assert previous == master.client.client_id
    assert service.store.require_session(SID).master_client_id == view.client.client_id


def test_the_participant_list_labels_the_view(service: SessionService, clock: ManualClock) -> None:
    browser = service.join(SID, None)
    view = service.join(SID, None, "view-aaaaaaaaaaaaaaaa", in_chat=True)
    clock.advance(2)
    assert service.announce_participants(SID)
    events = [Envelope.from_dict(e.to_dict()) for e in service.events_after(SID, 0, 100)[0]]
    listed = [e for e in events if e.type is MessageType.PARTICIPANTS][-1].payload
    assert listed is not None
    by_id = {p["client_id"]: p for p in listed["participants"]}
    assert by_id[view.client.client_id]["in_chat"] is True
    assert "in_chat" not in by_id[browser.client.client_id]
    _session, people = service.participants(SID)
    assert {p.client_id: p.in_chat for p in people} == {browser.client.client_id: False, view.client.client_id: True}
    # A resumed view stays in chat.
    again = service.join(SID, view.client.client_id, "view-aaaaaaaaaaaaaaaa", in_chat=True)
    assert again.resumed and again.client.in_chat
