"""Liveness on a controllable clock: failover, stale browsers, expiry sweep, transfer of control.

``SessionService`` on the in-memory backends (held to the boto3 ones by ``tests/contract``) and a
``ManualClock``: a timeout passes by advancing the clock, never by sleeping.
"""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalice_app.application import create_app, sweep_handler
from chalice_app.errors import Forbidden, InvalidInput, NotFound
from chalice_app.roles import Role
from chalice_app.sessions import JoinOutcome, SessionService
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import ManualClock, memory_service
from web_py.messages import Envelope, MessageType

SETTINGS = Settings(heartbeat_timeout_s=15, heartbeat_interval_s=5, stale_after_s=120, session_ttl_s=3600,
                    price_source="simulated")
SID = "live-test"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(clock: ManualClock) -> SessionService:
    svc = memory_service(SETTINGS, clock)
    svc.create_session(SID, None)
    return svc


def join(service: SessionService, clock: ManualClock) -> JoinOutcome:
    # Joined a second apart: the longest-connected observer is well defined.
    clock.advance(1)
    return service.join(SID, None)


def live_events(service: SessionService, client_id: str) -> list[Envelope]:
    """Everything on the browser's live queue, acknowledged."""
    events: list[Envelope] = []
    while batch := service.poll(SID, client_id, "live", 0, 10):
        events.extend(Envelope.from_json(body) for _, body in batch)
        service.delete(SID, client_id, "live", [handle for handle, _ in batch])
    return events


def heartbeat_for(service: SessionService, clock: ManualClock, seconds: float, *client_ids: str,
                  sweeping: bool = False) -> None:
    """Let ``seconds`` pass with these browsers heartbeating every interval (and nobody else);
    with ``sweeping``, the scheduled sweep runs too, as it does in AWS and in the local stack."""
    step = SETTINGS.heartbeat_interval_s
    elapsed = 0.0
    while elapsed < seconds:
        clock.advance(step)
        elapsed += step
        for client_id in client_ids:
            service.heartbeat(SID, client_id)
        if sweeping:
            service.sweep_all()


def test_a_silent_master_is_replaced_by_the_longest_connected_live_observer(
        service: SessionService, clock: ManualClock) -> None:
    master, older, newer = (join(service, clock).client.client_id for _ in range(3))
    assert service.heartbeat(SID, master)[0] is Role.MASTER
    live_events(service, newer)

    # Up to the timeout the silent master keeps its role ...
    heartbeat_for(service, clock, SETTINGS.heartbeat_timeout_s - 5, older, newer)
    assert service.store.require_session(SID).master_client_id == master
    # ... past it, the observer that joined first takes over.
    heartbeat_for(service, clock, 10, older, newer)
    assert service.heartbeat(SID, older)[0] is Role.MASTER
    assert service.heartbeat(SID, newer)[0] is Role.OBSERVER
    roles = {p.client_id: p.role for p in service.participants(SID)[1]}
    assert roles == {master: Role.OBSERVER, older: Role.MASTER, newer: Role.OBSERVER}
    changes = [e for e in live_events(service, newer) if e.type is MessageType.ROLE_CHANGE]
    assert [e.payload for e in changes] == [
        {"master_client_id": older, "previous_master_client_id": master, "reason": "failover"}]


def test_a_master_that_keeps_heartbeating_keeps_its_role(service: SessionService, clock: ManualClock) -> None:
    master, observer = (join(service, clock).client.client_id for _ in range(2))
    heartbeat_for(service, clock, 10 * SETTINGS.heartbeat_timeout_s, master, observer)
    assert service.store.require_session(SID).master_client_id == master
    assert service.heartbeat(SID, observer)[0] is Role.OBSERVER


@pytest.mark.parametrize("queues_lost", [False, True])
def test_a_master_that_joins_again_after_a_silence_keeps_its_role(
        service: SessionService, clock: ManualClock, queues_lost: bool) -> None:
    # As after a restart of the local server: nobody could beat, then the master's page joins again
    # (with its queues, or without them: the restart deleted them) before its next heartbeat.
    master, observer = (join(service, clock).client.client_id for _ in range(2))
    clock.advance(SETTINGS.heartbeat_timeout_s + 5)
    if queues_lost:
        record = service.store.get_client(SID, master)
        assert record is not None
        service.queues.delete_queue(record.live_queue_url)
        service.queues.delete_queue(record.history_queue_url)
    rejoined = service.join(SID, master)
    assert rejoined.role is Role.MASTER
    # Its join showed it alive: an observer's beat right after does not take the role.
    assert service.heartbeat(SID, observer)[0] is Role.OBSERVER
    assert service.store.require_session(SID).master_client_id == master


def test_stale_browsers_are_removed_with_their_queues(service: SessionService, clock: ManualClock) -> None:
    alive = join(service, clock).client
    silent = join(service, clock).client
    live_events(service, alive.client_id)

    # Heartbeats alone never remove anyone: removal is the sweep's work, off every browser's request.
    heartbeat_for(service, clock, 2 * SETTINGS.stale_after_s, alive.client_id)
    record = service.store.get_client(SID, silent.client_id)
    assert record is not None and record.active and service.queues.exists(silent.live_queue_url)
    assert [p.client_id for p in service.live_participants(service.store.require_session(SID))] == [alive.client_id]
    service.store.touch_client(SID, silent.client_id)
    heartbeat_for(service, clock, SETTINGS.stale_after_s - 10, alive.client_id, sweeping=True)
    record = service.store.get_client(SID, silent.client_id)
    assert record is not None and record.active and service.queues.exists(silent.live_queue_url)

    heartbeat_for(service, clock, 20, alive.client_id, sweeping=True)
    record = service.store.get_client(SID, silent.client_id)
    assert record is not None and not record.active
    assert not service.queues.exists(silent.live_queue_url)
    assert not service.queues.exists(silent.history_queue_url)
    assert set(service.store.fanout(SID)[1]) == {alive.client_id}
    assert [p.client_id for p in service.participants(SID)[1]] == [alive.client_id]
    assert service.heartbeat(SID, alive.client_id)[0] is Role.MASTER
    # The others were told: the last PARTICIPANTS event lists only the live browser.
    people = [e for e in live_events(service, alive.client_id) if e.type is MessageType.PARTICIPANTS][-1]
    assert people.payload is not None
    assert [p["client_id"] for p in people.payload["participants"]] == [alive.client_id]


def test_the_scheduled_sweep_deletes_the_queues_of_expired_sessions(service: SessionService,
                                                                     clock: ManualClock) -> None:
    browser = join(service, clock).client
    other = "still-live"
    service.create_session(other, None)
    sweep = sweep_handler(create_app(lambda: service))
    scheduled_event = {"version": "0", "id": "sweep", "detail-type": "Scheduled Event", "source": "aws.events",
                       "account": "123456789012", "time": "2026-11-27T12:00:00Z", "region": "us-east-1",
                       "resources": [], "detail": {}}
    assert sweep(scheduled_event, None) == {"sessions": 2, "expired": 0}
    assert service.queues.exists(browser.live_queue_url)

    clock.advance(SETTINGS.session_ttl_s)
    service.create_session(other, None)
    # Expired: invisible at once (reads filter on expires_at) ...
    with pytest.raises(NotFound):
        service.participants(SID)
    # ... and the scheduled sweep deletes what TTL and the bucket's lifecycle leave behind: queues.
    assert sweep(scheduled_event, None) == {"sessions": 1, "expired": 1}
    assert not service.queues.exists(browser.live_queue_url)
    assert not service.queues.exists(browser.history_queue_url)
    # Marked ended: the next sweep leaves it alone.
    assert sweep(scheduled_event, None) == {"sessions": 1, "expired": 0}


def test_the_ai_transfers_control_and_only_the_master_may_act(service: SessionService, clock: ManualClock) -> None:
    master, observer = (join(service, clock).client.client_id for _ in range(2))
    with pytest.raises(Forbidden):
        service.require_master(SID, observer)
    assert service.transfer_control(SID, observer) == master
    assert service.heartbeat(SID, observer)[0] is Role.MASTER
    assert service.heartbeat(SID, master)[0] is Role.OBSERVER
    service.require_master(SID, observer)
    with pytest.raises(Forbidden):
        service.require_master(SID, master)
    with pytest.raises(InvalidInput, match="already the master"):
        service.transfer_control(SID, observer)
    with pytest.raises(NotFound):
        service.transfer_control(SID, "zzzzzzzzzzzz")
    changes = [e.payload for e in live_events(service, master) if e.type is MessageType.ROLE_CHANGE]
    assert changes[-1] == {"master_client_id": observer, "previous_master_client_id": master, "reason": "transfer"}


def test_an_app_built_on_memory_backends_and_a_fake_clock_fails_over_through_rest(clock: ManualClock) -> None:
    service = memory_service(SETTINGS, clock)
    app = create_app(lambda: service)

    def post(client: Client, path: str, tab: str, cookie: str | None = None) -> tuple[dict[str, object], str]:
        headers = {"Content-Type": "application/json", "X-PBFM-Tab": tab, **({"Cookie": cookie} if cookie else {})}
        response = client.http.post(path, body=json.dumps({"session_id": SID}), headers=headers)
        assert response.status_code == 200, response.body
        headers = {name.lower(): value for name, value in response.headers.items()}
        return json.loads(response.body), str(headers.get("set-cookie", "")).split(";")[0]

    with Client(app) as client:
        post(client, "/api/webpage_create_session", "t")
        first, first_cookie = post(client, "/api/webpage_join_session", "a")
        clock.advance(1)
        second, second_cookie = post(client, "/api/webpage_join_session", "b")
        assert (first["role"], second["role"]) == ("master", "observer")
        clock.advance(SETTINGS.heartbeat_timeout_s + 1)
        beat, _ = post(client, "/api/webpage_send_heartbeat", "b", second_cookie)
        assert beat["role"] == "master" and beat["master_client_id"] == second["client_id"]
        assert beat["server_time"] == clock()
        beat, _ = post(client, "/api/webpage_send_heartbeat", "a", first_cookie)
        assert beat["role"] == "observer"


def test_a_master_that_left_is_replaced_by_the_next_sweep_whatever_its_last_beat(
        service: SessionService, clock: ManualClock) -> None:
    master, observer = (join(service, clock).client.client_id for _ in range(2))
    assert service.store.require_session(SID).master_client_id == master
    service.heartbeat(SID, master)  # its beat is fresh...
    service.store.mark_client_gone(SID, master)  # ...but it is no longer in the session
    clock.advance(1)
    service.sweep(SID)
    assert service.store.require_session(SID).master_client_id == observer



def test_a_browser_left_out_of_a_list_while_silent_is_listed_again_when_it_beats(
        service: SessionService, clock: ManualClock) -> None:
    """A list announced while a browser is silent (its page busy, say) leaves it out, before any sweep
    has marked it away. Its next heartbeat must bring it back into the list the others see."""
    first = join(service, clock).client
    busy = join(service, clock).client
    heartbeat_for(service, clock, SETTINGS.heartbeat_timeout_s + 5, first.client_id)  # busy says nothing
    later = join(service, clock).client
    heartbeat_for(service, clock, SETTINGS.heartbeat_interval_s, first.client_id, later.client_id)
    assert listed(service, first.client_id) == [first.client_id, later.client_id]

    # Back, it beats; a list announced after that has it again.
    heartbeat_for(service, clock, 2 * SETTINGS.heartbeat_interval_s, first.client_id, busy.client_id,
                  later.client_id)
    assert listed(service, first.client_id) == [first.client_id, busy.client_id, later.client_id]


def test_a_browser_that_beats_while_it_is_left_out_is_in_the_next_list(
        service: SessionService, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    first = join(service, clock).client
    busy = join(service, clock).client
    heartbeat_for(service, clock, SETTINGS.heartbeat_timeout_s + 5, first.client_id)
    mark_away = service.store.mark_client_away

    def beat_first(session_id: str, client_id: str, silent_since: float) -> bool:
        # Its beat lands after the list was read and before it could be marked away.
        service.store.touch_client(session_id, client_id)
        return mark_away(session_id, client_id, silent_since)

    monkeypatch.setattr(service.store, "mark_client_away", beat_first)
    later = join(service, clock).client
    heartbeat_for(service, clock, SETTINGS.heartbeat_interval_s, first.client_id, later.client_id)
    assert listed(service, first.client_id) == [first.client_id, later.client_id]
    monkeypatch.undo()
    heartbeat_for(service, clock, SETTINGS.heartbeat_interval_s, first.client_id, busy.client_id, later.client_id)
    assert listed(service, first.client_id) == [first.client_id, busy.client_id, later.client_id]


def listed(service: SessionService, client_id: str) -> list[str]:
    """The browsers in the last participant list ``client_id``'s page received since it last looked."""
    lists = [e for e in live_events(service, client_id) if e.type is MessageType.PARTICIPANTS]
    assert lists and lists[-1].payload is not None, "no participant list was announced since"
    return [p["client_id"] for p in lists[-1].payload["participants"]]
