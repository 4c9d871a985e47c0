"""A join costs the same at the 1st and the 100th viewer; lists coalesce; caps; the fan-out cache.

``SessionService`` on the in-memory backends (held to the boto3 ones by ``tests/contract``) and a
``ManualClock``. The server's work is counted by wrapping the stores: every call by name.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from chalice.test import Client

from chalice_app.application import create_app
from chalice_app.errors import Conflict
from chalice_app.roles import Role
from chalice_app.sessions import PLACE_IN_FLIGHT_S, SessionFull, SessionService, viewers_counter
from chalice_app.settings import Settings
from pbfm_tooling.memory_backends import ManualClock, MemoryBlobStore, MemoryBrowserQueues, MemoryEventStore
from tests.counting import Counting
from web_py import page_state
from web_py.messages import Envelope, MessageType

SETTINGS = Settings(heartbeat_timeout_s=30, heartbeat_interval_s=15, stale_after_s=120, session_ttl_s=3600,
                    price_source="simulated", participants_every_s=2, max_viewers=1000, max_tabs_per_browser=8)
SID = "scale-test"




class Backends:
    def __init__(self, clock: ManualClock) -> None:
        self.store = MemoryEventStore(clock)
        self.queues = MemoryBrowserQueues(SETTINGS.queue_prefix, SETTINGS.queue_visibility_timeout_s, clock)
        self.blobs = MemoryBlobStore(SETTINGS.bucket_name, clock)

    def service(self, clock: ManualClock, settings: Settings = SETTINGS) -> tuple[SessionService, Counting, Counting]:
        """One "container": its own service (and caches) over the shared backends, counted."""
        store, queues = Counting(self.store), Counting(self.queues)
        return SessionService(settings, store, queues, self.blobs, clock=clock), store, queues  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def backends(clock: ManualClock) -> Backends:
    return Backends(clock)


def drain(service: SessionService, client_id: str, queue: str = "live") -> list[Envelope]:
    events: list[Envelope] = []
    while batch := service.poll(SID, client_id, queue, 0, 10):
        events.extend(Envelope.from_json(body) for _, body in batch)
        service.delete(SID, client_id, queue, [handle for handle, _ in batch])
    return events


def fold(service: SessionService, state: page_state.PageState, envelopes: list[Envelope]) -> page_state.PageState:
    """What a page does with its queue: skip what it has, apply the rest in order (inline events only here)."""
    for envelope in envelopes:
        if envelope.type is MessageType.SNAPSHOT:
            assert envelope.s3_key is not None
            state = page_state.apply(state, envelope, service.blobs.get_json(envelope.s3_key))
        elif envelope.is_event and envelope.seq > state.last_seq:
            state = page_state.apply(state, envelope)
    return state


def test_the_server_work_of_a_join_is_the_same_for_the_2nd_and_the_100th_viewer(
        backends: Backends, clock: ManualClock) -> None:
    service, store, queues = backends.service(clock)
    service.create_session(SID, None)
    work: list[tuple[Counter[str], Counter[str]]] = []
    for _ in range(100):
        clock.advance(0.1)
        store.calls.clear()
        queues.calls.clear()
        service.join(SID, None, browser_id=None)
        work.append((Counter(store.calls), Counter(queues.calls)))
    # The first join also makes the master (a ROLE_CHANGE to its own queue); from then on every join
    # costs exactly the same calls: no Query of the browsers, no send to the others.
    assert all(w == work[1] for w in work[2:])
    store_calls, queue_calls = work[-1]
    assert store_calls["list_clients"] == 0 and store_calls["fanout"] == 0
    assert queue_calls == Counter({"create": 1, "send_all": 1})
    # And the others heard nothing yet: nothing on anyone's live queue but the first ROLE_CHANGE.
    assert service.store.require_session(SID).seq == 1


def test_joins_and_leaves_are_announced_coalesced_and_every_page_converges(
        backends: Backends, clock: ManualClock) -> None:
    service, _, queues = backends.service(clock)
    service.create_session(SID, None)
    first = service.join(SID, None).client.client_id
    page = fold(service, page_state.PageState(), drain(service, first, "history"))
    joined = []
    for _ in range(30):
        clock.advance(0.01)
        joined.append(service.join(SID, None).client.client_id)
    clock.advance(SETTINGS.participants_every_s)
    queues.calls.clear()
    assert service.sweep_if_due(SID) == 0
    # One PARTICIPANTS event for 30 joins: one send per live browser, once.
    assert queues.calls["send"] == 31
    page = fold(service, page, drain(service, first))
    assert [p.client_id for p in page.participants] == [first, *joined]
    assert page.participants[0].role == "master"
    # Nothing changed: nothing announced.
    clock.advance(SETTINGS.participants_every_s)
    queues.calls.clear()
    service.sweep_if_due(SID)
    assert queues.calls["send"] == 0

    # Ten leave (their queues vanish: the next publish removes them); the list follows, once.
    for client_id in joined[:10]:
        record = service.store.get_client(SID, client_id)
        assert record is not None
        service.queues.delete_queue(record.live_queue_url)
    service.publish(SID, MessageType.ROLE_CHANGE, payload={
        "master_client_id": first, "previous_master_client_id": None, "reason": "transfer"})
    clock.advance(SETTINGS.participants_every_s)
    assert service.announce_participants(SID)
    page = fold(service, page, drain(service, first))
    assert [p.client_id for p in page.participants] == [first, *joined[10:]]
    # A page joining late folds the same log (snapshot + tail) to the same list.
    late = service.join(SID, None).client.client_id
    late_page = fold(service, page_state.PageState(), drain(service, late, "history"))
    assert late_page.participants == page.participants


def test_an_announcement_waits_for_the_interval_and_for_the_claim(backends: Backends, clock: ManualClock) -> None:
    service, _, _ = backends.service(clock)
    other, _, _ = backends.service(clock)
    service.create_session(SID, None)
    service.join(SID, None)
    clock.advance(SETTINGS.participants_every_s)
    assert service.announce_participants(SID)
    service.join(SID, None)
    assert not service.announce_participants(SID)  # announced less than an interval ago
    clock.advance(SETTINGS.participants_every_s)
    session = service.store.require_session(SID)
    assert other.announce_participants(SID, session)
    # A second announcer holding the same (now old) METADATA loses the claim: one event, not two.
    assert not service.announce_participants(SID, session)


def test_a_publish_reads_the_fan_out_set_only_after_it_changed(backends: Backends, clock: ManualClock) -> None:
    service, store, _ = backends.service(clock)
    service.create_session(SID, None)
    a = service.join(SID, None).client.client_id
    service.join(SID, None)
    reads = store.calls["fanout"]
    for _ in range(20):
        service.publish(SID, MessageType.ROLE_CHANGE, payload={
            "master_client_id": a, "previous_master_client_id": None, "reason": "transfer"})
    assert store.calls["fanout"] - reads == 1  # one Query after the joins, then the cache
    service.join(SID, None)
    service.publish(SID, MessageType.ROLE_CHANGE, payload={
        "master_client_id": a, "previous_master_client_id": None, "reason": "transfer"})
    assert store.calls["fanout"] - reads == 2


def test_a_browser_joining_through_another_container_gets_every_later_event_live(
        backends: Backends, clock: ManualClock) -> None:
    publisher, _, _ = backends.service(clock)
    joiner, _, _ = backends.service(clock)
    publisher.create_session(SID, None)
    first = joiner.join(SID, None).client.client_id
    for n in range(3):
        # The publisher's cache is warm before each join; the join goes through the other container.
        publisher.publish(SID, MessageType.ROLE_CHANGE, payload={
            "master_client_id": first, "previous_master_client_id": None, "reason": "transfer"})
        newcomer = joiner.join(SID, None)
        delivery = publisher.publish(SID, MessageType.ROLE_CHANGE, payload={
            "master_client_id": first, "previous_master_client_id": None, "reason": "transfer"})
        assert delivery.delivered == n + 2
        history = drain(joiner, newcomer.client.client_id, "history")
        live = drain(joiner, newcomer.client.client_id)
        assert newcomer.history_last_seq < delivery.seq
        assert delivery.seq in [e.seq for e in live]
        assert delivery.seq not in [e.seq for e in history]


def test_a_joiner_that_finds_the_master_silent_fails_over_at_once(backends: Backends, clock: ManualClock) -> None:
    service, _, _ = backends.service(clock)
    service.create_session(SID, None)
    service.join(SID, None)
    clock.advance(1)
    observer = service.join(SID, None).client.client_id
    clock.advance(SETTINGS.heartbeat_timeout_s - 5)
    service.heartbeat(SID, observer)
    clock.advance(10)  # the master is silent past the timeout; the observer beat 10 s ago
    newcomer = service.join(SID, None)
    assert newcomer.master_client_id == observer and newcomer.role is Role.OBSERVER
    assert service.store.require_session(SID).master_client_id == observer


def test_a_heartbeat_sees_a_silent_master_without_reading_the_browsers(backends: Backends, clock: ManualClock) -> None:
    service, store, _ = backends.service(clock)
    service.create_session(SID, None)
    master = service.join(SID, None).client.client_id
    clock.advance(1)
    observers = [service.join(SID, None).client.client_id for _ in range(5)]
    clock.advance(SETTINGS.participants_every_s)
    service.announce_participants(SID)
    store.calls.clear()
    for _ in range(3):
        clock.advance(SETTINGS.heartbeat_interval_s)
        for client_id in [master, *observers]:
            service.heartbeat(SID, client_id)
    assert store.calls["list_clients"] == 0
    clock.advance(SETTINGS.heartbeat_timeout_s + 1)
    assert service.heartbeat(SID, observers[0])[0] is Role.MASTER
    assert store.calls["list_clients"] == 1  # the failover's one Query
    assert service.heartbeat(SID, master)[0] is Role.OBSERVER


def test_silent_browsers_leave_the_list_and_come_back_with_a_heartbeat(backends: Backends, clock: ManualClock) -> None:
    service, _, _ = backends.service(clock)
    service.create_session(SID, None)
    a = service.join(SID, None).client.client_id
    clock.advance(1)
    b = service.join(SID, None).client.client_id
    clock.advance(SETTINGS.heartbeat_timeout_s / 2)
    service.heartbeat(SID, a)
    clock.advance(SETTINGS.heartbeat_timeout_s / 2 + 1)
    service.heartbeat(SID, a)
    assert service.sweep_if_due(SID) == 0  # b is silent past the timeout: away, not removed
    page = fold(service, page_state.PageState(), drain(service, a, "history") + drain(service, a))
    assert [p.client_id for p in page.participants] == [a]
    service.heartbeat(SID, b)
    clock.advance(SETTINGS.participants_every_s)
    service.heartbeat(SID, a)  # the heartbeat finds the list due and announces it
    page = fold(service, page, drain(service, a))
    assert [p.client_id for p in page.participants] == [a, b]


def test_the_viewer_cap_refuses_a_join_that_creates_nothing(backends: Backends, clock: ManualClock) -> None:
    settings = Settings(**{**SETTINGS.__dict__, "max_viewers": 3})
    service, _, queues = backends.service(clock, settings)
    service.create_session(SID, None)
    people = [service.join(SID, None, browser_id=f"{n:016d}").client for n in range(3)]
    queues.calls.clear()
    with pytest.raises(SessionFull, match="full \\(3 viewers\\)") as refused:
        service.join(SID, None, browser_id="x" * 16)
    assert isinstance(refused.value, Conflict) and refused.value.status == 409
    assert queues.calls["create"] == 0
    # A returning browser keeps its place even when the session is full.
    assert service.join(SID, people[0].client_id, browser_id=f"{0:016d}").resumed
    # A stale browser's removal (by the sweep) frees its place.
    clock.advance(SETTINGS.stale_after_s + 1)
    for person in people[1:]:
        service.heartbeat(SID, person.client_id)
    assert service.sweep(SID) == 1
    service.join(SID, None, browser_id="x" * 16)


def test_the_recount_leaves_a_join_in_flight_its_place_and_frees_a_leaked_one_later(
        backends: Backends, clock: ManualClock) -> None:
    settings = Settings(**{**SETTINGS.__dict__, "max_viewers": 3})
    service, _, _ = backends.service(clock, settings)
    service.create_session(SID, None)
    people = [service.join(SID, None, browser_id=f"{n:016d}").client for n in range(2)]
    session = service.store.require_session(SID)
    counter = viewers_counter(session)
    # A third join has taken its place and is still creating its queues (or its process died there).
    assert service.store.reserve_slot(SID, counter, 3, expires_at=session.expires_at)
    service.sweep(SID)
    assert service.store.slots(SID, counter) == 3
    with pytest.raises(SessionFull):
        service.join(SID, None, browser_id="x" * 16)
    # Long after any join could still be in flight, the place counts as leaked and is given back.
    clock.advance(PLACE_IN_FLIGHT_S + 1)
    for person in people:
        service.heartbeat(SID, person.client_id)
    service.sweep(SID)
    assert service.store.slots(SID, counter) == 2
    service.join(SID, None, browser_id="x" * 16)


def test_the_tab_cap_counts_tabs_of_one_browser(backends: Backends, clock: ManualClock) -> None:
    settings = Settings(**{**SETTINGS.__dict__, "max_tabs_per_browser": 2})
    service, _, _ = backends.service(clock, settings)
    service.create_session(SID, None)
    service.join(SID, None, browser_id="a" * 16)
    service.join(SID, None, browser_id="a" * 16)
    with pytest.raises(SessionFull, match="2 tabs"):
        service.join(SID, None, browser_id="a" * 16)
    service.join(SID, None, browser_id="b" * 16)
    assert service.store.slots(SID, f"{service.store.require_session(SID).incarnation}#viewers") == 3


def test_a_full_session_is_a_409_with_a_message_over_rest(clock: ManualClock) -> None:
    settings = Settings(**{**SETTINGS.__dict__, "max_viewers": 1})
    service, _, _ = Backends(clock).service(clock, settings)
    app = create_app(lambda: service)
    with Client(app) as client:
        headers = {"Content-Type": "application/json"}
        body = json.dumps({"session_id": SID})
        client.http.post("/api/webpage_create_session", body=body, headers=headers)
        assert client.http.post("/api/webpage_join_session", body=body, headers=headers).status_code == 200
        refused = client.http.post("/api/webpage_join_session", body=body, headers=headers)
        assert refused.status_code == 409
        answer = json.loads(refused.body)
        assert answer["error"] == "session_full" and "full (1 viewers)" in answer["message"]
        assert answer["details"]["limit"] == 1


def test_removing_many_stale_browsers_announces_once(backends: Backends, clock: ManualClock) -> None:
    service, _, queues = backends.service(clock)
    service.create_session(SID, None)
    alive = service.join(SID, None).client.client_id
    for _ in range(40):
        service.join(SID, None)
    clock.advance(SETTINGS.stale_after_s + 1)
    service.heartbeat(SID, alive)
    drain(service, alive, "history")
    drain(service, alive)
    queues.calls.clear()
    assert service.sweep(SID) == 40
    assert queues.calls["delete_queue"] == 80
    # No announcement per removal; one list, within the interval, to the one browser left.
    assert queues.calls["send"] == 0
    clock.advance(SETTINGS.participants_every_s)
    service.sweep_if_due(SID)
    assert queues.calls["send"] == 1
    [announced] = drain(service, alive)
    assert announced.type is MessageType.PARTICIPANTS and announced.payload is not None
    assert [p["client_id"] for p in announced.payload["participants"]] == [alive]


def test_a_larger_session_gets_its_list_less_often(backends: Backends, clock: ManualClock) -> None:
    settings = Settings(**{**SETTINGS.__dict__, "participant_sends_per_s": 10})
    service, _, queues = backends.service(clock, settings)
    service.create_session(SID, None)
    for _ in range(30):
        clock.advance(0.01)
        service.join(SID, None)
    assert service.announce_participants(SID)  # 30 sends: at most 10 a second means one list per 3 s
    service.join(SID, None)
    clock.advance(SETTINGS.participants_every_s)
    assert not service.announce_participants(SID)
    clock.advance(3 - SETTINGS.participants_every_s)
    queues.calls.clear()
    assert service.announce_participants(SID)
    assert queues.calls["send"] == 31
