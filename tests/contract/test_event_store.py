"""The event store's contract: the same tests on MemoryEventStore and on DynamoEventStore over moto."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from chalice_app.errors import Gone, NotFound
from chalice_app.ports import ClientRecord, EventStore
from tests.contract.backend import Backend

TTL = 3600
# A counter's own expiry (the session's, in the service) plays no part in these tests.
UNTIL_2100 = 4_102_444_800


def client(session_id: str, client_id: str, joined_at: float, *, status: str = "active",
           incarnation: str = "") -> ClientRecord:
    return ClientRecord(session_id=session_id, client_id=client_id, status=status, joined_at=joined_at,
                        last_heartbeat=joined_at, live_queue_url=f"https://q/{client_id}",
                        history_queue_url=f"https://q/{client_id}-history", expires_at=2_000_000_000,
                        incarnation=incarnation)


def test_creating_a_session_is_idempotent_while_it_lives(backend: Backend, session_id: str) -> None:
    first, created = backend.store.create_session(session_id, "title", TTL)
    again, created_again = backend.store.create_session(session_id, "other", TTL)
    assert (created, created_again) == (True, False)
    assert again == first
    assert (first.status, first.seq, first.title, first.master_client_id, first.fanout_version) == (
        "active", 0, "title", None, 0)
    assert backend.store.fanout(session_id) == (0, {})
    assert first.expires_at == int(backend.clock() + TTL)


def test_an_expired_session_is_invisible_and_replaced_by_a_new_incarnation_that_starts_at_one(
        backend: Backend, session_id: str) -> None:
    store = backend.store
    old, _ = store.create_session(session_id, None, 10)
    for _ in range(65):
        store.append(session_id, "PRICE_UPDATE", None, {"n": 1}, 10)
    backend.clock.advance(11)
    assert store.get_session(session_id) is None
    with pytest.raises(NotFound):
        store.require_session(session_id)
    assert store.events_after(session_id, 0) == []
    record, created = store.create_session(session_id, None, TTL)
    assert created and record.seq == 0
    assert record.incarnation and record.incarnation != old.incarnation
    # Neither TTL deletes items promptly, yet the new log neither collides with nor shows them.
    appended = store.append(session_id, "PRICE_UPDATE", None, {"n": 2}, TTL)
    assert (appended.event.seq, appended.event.incarnation) == (1, record.incarnation)
    assert [(e.seq, e.payload) for e in store.events_after(session_id, 0)] == [(1, {"n": 2})]
    assert store.require_session(session_id).seq == 1


def test_an_ended_session_is_replaced_at_once_by_a_new_incarnation(backend: Backend, session_id: str) -> None:
    store = backend.store
    old, _ = store.create_session(session_id, None, TTL)
    store.append(session_id, "PRICE_UPDATE", None, {"n": 1}, TTL)
    store.put_client(client(session_id, "aaaaaaaaaaaa", 1.0, incarnation=old.incarnation))
    store.mark_ended(session_id)
    record, created = store.create_session(session_id, "again", TTL)
    assert created and record.active and record.seq == 0 and record.incarnation != old.incarnation
    assert store.events_after(session_id, 0) == []
    # Browsers are keyed by client id (which differs per incarnation) and carry their incarnation.
    assert [c.incarnation for c in store.list_clients(session_id)] == [old.incarnation]
    assert store.append(session_id, "PRICE_UPDATE", None, {"n": 2}, TTL).event.seq == 1


def test_an_ended_session_is_gone_but_readable(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    store.mark_ended(session_id)
    with pytest.raises(Gone):
        store.require_session(session_id)
    assert store.require_session(session_id, active=False).status == "ended"
    with pytest.raises(Gone):
        store.append(session_id, "PRICE_UPDATE", None, None, TTL)
    assert store.append(session_id, "SESSION_ENDED", None, None, TTL, allow_ended=True).event.seq == 1


def test_append_and_replay_keep_order_payload_and_key(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    a = store.append(session_id, "LAYOUT_UPDATE", "layouts/x/1.json", None, TTL).event
    b = store.append(session_id, "ROLE_CHANGE", None, {"master_client_id": "m", "nested": [1, 2]}, TTL).event
    assert (a.seq, b.seq) == (1, 2)
    assert a.ts == backend.clock()
    assert store.events_after(session_id, 0) == [a, b]
    assert store.events_after(session_id, 1) == [b]
    assert store.events_after(session_id, 0, limit=1) == [a]
    assert store.events_after(session_id, 2) == []
    assert store.require_session(session_id).seq == 2


def test_each_event_expires_on_its_own_ttl(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    store.append(session_id, "PRICE_UPDATE", None, None, 5)
    store.append(session_id, "PRICE_UPDATE", None, None, 100)
    backend.clock.advance(6)
    assert [e.seq for e in store.events_after(session_id, 0)] == [2]


def test_concurrent_writers_get_distinct_gapless_sequence_numbers(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    seqs: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(10):
            seq = store.append(session_id, "PRICE_UPDATE", None, None, TTL).event.seq
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 61))
    assert [e.seq for e in store.events_after(session_id, 0)] == list(range(1, 61))
    assert store.require_session(session_id).seq == 60


def test_the_fan_out_set_is_one_item_per_browser_behind_a_version_the_append_returns(
        backend: Backend, session_id: str) -> None:
    store = backend.store
    record = store.create_session(session_id, None, TTL)[0]
    inc, until = record.incarnation, record.expires_at
    assert store.add_to_fanout(session_id, "aaaaaaaaaaaa", "https://q/a", incarnation=inc, expires_at=until) == 1
    assert store.add_to_fanout(session_id, "bbbbbbbbbbbb", "https://q/b", incarnation=inc, expires_at=until) == 2
    assert store.add_to_fanout(session_id, "bbbbbbbbbbbb", "https://q/b", incarnation=inc, expires_at=until) == 3
    assert store.append(session_id, "PRICE_UPDATE", None, None, TTL).fanout_version == 3
    assert store.fanout(session_id) == (3, {"aaaaaaaaaaaa": "https://q/a", "bbbbbbbbbbbb": "https://q/b"})
    assert store.fanout(session_id, incarnation=inc) == store.fanout(session_id)
    assert store.remove_from_fanout(session_id, "aaaaaaaaaaaa", incarnation=inc) == 4
    assert store.remove_from_fanout(session_id, "cccccccccccc", incarnation=inc) == 5
    assert store.append(session_id, "PRICE_UPDATE", None, None, TTL).fanout_version == 5
    assert store.fanout(session_id) == (5, {"bbbbbbbbbbbb": "https://q/b"})
    assert store.require_session(session_id).fanout_version == 5
    # An entry lives until the time it was given: past it, it is no longer part of the set.
    assert store.add_to_fanout(session_id, "dddddddddddd", "https://q/d", incarnation=inc,
                               expires_at=int(backend.clock()) + 5) == 6
    assert "dddddddddddd" in store.fanout(session_id)[1]
    backend.clock.advance(6)
    assert store.fanout(session_id) == (6, {"bbbbbbbbbbbb": "https://q/b"})


def test_a_recreated_session_does_not_inherit_its_predecessors_fan_out(backend: Backend, session_id: str) -> None:
    store = backend.store
    first = store.create_session(session_id, None, 10)[0]
    store.add_to_fanout(session_id, "aaaaaaaaaaaa", "https://q/a", incarnation=first.incarnation,
                        expires_at=first.expires_at)
    backend.clock.advance(11)
    store.create_session(session_id, None, TTL)
    assert store.fanout(session_id) == (0, {})


def test_an_ended_and_recreated_session_starts_its_metadata_afresh(backend: Backend, session_id: str) -> None:
    # Ended, its items are still live (no TTL has passed): only the incarnation keeps them apart.
    store = backend.store
    first = store.create_session(session_id, None, TTL)[0]
    old = first.incarnation
    store.add_to_fanout(session_id, "aaaaaaaaaaaa", "https://q/a", incarnation=old, expires_at=first.expires_at)
    assert store.set_master(session_id, "aaaaaaaaaaaa", None)
    store.bump_roster(session_id)
    assert store.claim_roster(session_id, 0, 3.5) and store.mark_roster_announced(session_id, 1, seq=9)
    assert store.claim_sweep(session_id, 0, 4.5)
    now = backend.clock()
    assert store.claim_refresh(session_id, now - 60, now)
    store.append(session_id, "PRICE_UPDATE", None, None, TTL)
    assert store.set_snapshot(session_id, 1, "snap/old")
    store.mark_ended(session_id)
    record, created = store.create_session(session_id, None, TTL)
    assert created and record.incarnation != old
    assert (record.seq, record.master_client_id, record.master_heartbeat, record.fanout_version) == (0, None, 0, 0)
    assert (record.roster_version, record.roster_announced, record.roster_announced_at) == (0, 0, 0)
    assert (record.last_sweep, record.snapshot_seq, record.snapshot_key) == (0, 0, None)
    assert store.fanout(session_id) == (0, {})
    # The old incarnation's set is still its own (nothing reads it once the id lives again).
    assert store.fanout(session_id, incarnation=old)[1] == {"aaaaaaaaaaaa": "https://q/a"}
    assert store.events_after(session_id, 0) == []
    assert [e.seq for e in store.events_after(session_id, 0, incarnation=old)] == [1]
    # A refresh claimed just now in the old incarnation does not hold back the new one's.
    assert store.claim_refresh(session_id, now - 60, now)
    # The new incarnation's announcements are recorded from its own first seq on.
    assert store.mark_roster_announced(session_id, 1, seq=1)


def test_the_masters_heartbeat_is_on_metadata(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    assert not store.touch_master(session_id, "aaaaaaaaaaaa", 5.0)
    backend.clock.advance(2)
    assert store.set_master(session_id, "aaaaaaaaaaaa", None)
    assert store.require_session(session_id).master_heartbeat == backend.clock()
    assert store.touch_master(session_id, "aaaaaaaaaaaa", backend.clock() + 7.5)
    assert not store.touch_master(session_id, "bbbbbbbbbbbb", backend.clock() + 9)
    assert store.require_session(session_id).master_heartbeat == backend.clock() + 7.5


def take_place(store: EventStore, session_id: str, limit: int) -> bool:
    return bool(store.reserve_slot(session_id, "viewers", limit, expires_at=UNTIL_2100))


def test_counters_stop_at_their_limit_and_never_go_below_zero(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    assert [take_place(store, session_id, 2) for _ in range(3)] == [True, True, False]
    assert store.slots(session_id, "viewers") == 2
    assert store.slots(session_id, "tabs#x") == 0
    store.release_slot(session_id, "viewers")
    assert take_place(store, session_id, 2)
    for _ in range(4):
        store.release_slot(session_id, "viewers")
    assert store.slots(session_id, "viewers") == 0


def test_a_counter_is_corrected_only_from_the_value_read_and_after_a_quiet_time(
        backend: Backend, session_id: str) -> None:
    store, clock = backend.store, backend.clock
    store.create_session(session_id, None, TTL)
    assert take_place(store, session_id, 5) and take_place(store, session_id, 5)
    reserved = clock()
    assert not store.set_slots(session_id, "tabs#x", 0, expected=1, quiet_since=reserved)  # never counted
    assert not store.set_slots(session_id, "viewers", 1, expected=2, quiet_since=reserved - 1)  # a place since
    assert not store.set_slots(session_id, "viewers", 1, expected=3, quiet_since=reserved)  # not what was read
    assert store.slots(session_id, "viewers") == 2
    clock.advance(10)
    assert store.set_slots(session_id, "viewers", 1, expected=2, quiet_since=clock() - 5)
    assert store.slots(session_id, "viewers") == 1
    assert take_place(store, session_id, 2) and not take_place(store, session_id, 2)


def test_concurrent_reservations_never_pass_the_limit(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    granted: list[bool] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(5):
            ok = take_place(store, session_id, 12)
            with lock:
                granted.append(ok)

    threads = [threading.Thread(target=reserve) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 12 and store.slots(session_id, "viewers") == 12


def test_the_roster_is_counted_claimed_and_recorded_by_the_announcing_seq(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    store.bump_roster(session_id)
    store.bump_roster(session_id)
    record = store.require_session(session_id)
    assert (record.roster_version, record.roster_announced, record.roster_announced_at) == (2, 0, 0)
    assert store.claim_roster(session_id, 0, 3.5)
    assert not store.claim_roster(session_id, 0, 4.0)
    assert store.mark_roster_announced(session_id, 2, seq=7)
    # An announcement stored earlier (seq 5) but recorded later does not overwrite the later one.
    assert not store.mark_roster_announced(session_id, 1, seq=5)
    record = store.require_session(session_id)
    assert (record.roster_announced, record.roster_announced_at) == (2, 3.5)


def test_a_browser_goes_away_once_and_a_heartbeat_brings_it_back(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    start = backend.clock()
    store.put_client(client(session_id, "aaaaaaaaaaaa", start))
    assert not store.mark_client_away(session_id, "aaaaaaaaaaaa", start)  # not silent since before then
    assert store.mark_client_away(session_id, "aaaaaaaaaaaa", start + 1)
    assert not store.mark_client_away(session_id, "aaaaaaaaaaaa", start + 1)
    away = store.get_client(session_id, "aaaaaaaaaaaa")
    assert away is not None and away.away and away.active
    backend.clock.advance(5)
    assert store.touch_client(session_id, "aaaaaaaaaaaa") is True
    assert store.touch_client(session_id, "aaaaaaaaaaaa") is False
    back = store.get_client(session_id, "aaaaaaaaaaaa")
    assert back is not None and not back.away and back.last_heartbeat == backend.clock()
    store.mark_client_gone(session_id, "aaaaaaaaaaaa")
    assert not store.mark_client_away(session_id, "aaaaaaaaaaaa", backend.clock() + 10)


def test_a_browsers_profile_is_kept_with_it(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    record = replace(client(session_id, "aaaaaaaaaaaa", backend.clock()), browser_id="b" * 16)
    store.put_client(record)
    assert store.get_client(session_id, "aaaaaaaaaaaa") == record


def test_the_master_changes_only_from_the_expected_one(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    assert store.set_master(session_id, "a", None)
    assert not store.set_master(session_id, "b", None)
    assert not store.set_master(session_id, "b", "c")
    assert store.set_master(session_id, "b", "a")
    assert store.require_session(session_id).master_client_id == "b"
    store.mark_ended(session_id)
    assert not store.set_master(session_id, "a", "b")


def test_a_failover_loses_to_a_beat_that_landed_since_the_master_was_found_silent(backend: Backend,
                                                                                  session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    assert store.set_master(session_id, "a", None)
    beat = backend.clock()
    assert store.touch_master(session_id, "a", beat)
    # The promoter read an older beat and decided "silent since before `beat`": the write refuses.
    assert not store.set_master(session_id, "b", "a", silent_before=beat)
    assert store.require_session(session_id).master_client_id == "a"
    # Still silent at the write: the promotion goes through. An explicit transfer takes no such condition.
    assert store.set_master(session_id, "b", "a", silent_before=beat + 0.5)
    assert store.set_master(session_id, "a", "b")


def test_price_refreshes_are_claimed_at_most_once_per_window(backend: Backend, session_id: str) -> None:
    store = backend.store
    assert not store.claim_refresh(session_id, 0, 10.0)  # no such session
    store.create_session(session_id, None, TTL)
    assert store.claim_refresh(session_id, 5.0, 10.0)
    assert not store.claim_refresh(session_id, 9.5, 14.5)  # the last one (10.0) is inside the window
    assert store.claim_refresh(session_id, 10.0, 15.0)
    assert not store.claim_refresh(session_id, 14.0, 19.0)


def test_sweep_turns_and_snapshots_are_compare_and_set(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    assert store.claim_sweep(session_id, 0, 10.5)
    assert not store.claim_sweep(session_id, 0, 11.0)
    assert store.claim_sweep(session_id, 10.5, 12.25)
    assert store.require_session(session_id).last_sweep == 12.25
    assert store.set_snapshot(session_id, 5, "snap/5")
    assert not store.set_snapshot(session_id, 5, "snap/5b")
    assert not store.set_snapshot(session_id, 3, "snap/3")
    record = store.require_session(session_id)
    assert (record.snapshot_seq, record.snapshot_key) == (5, "snap/5")


def test_client_records(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    assert store.get_client(session_id, "aaaaaaaaaaaa") is None
    later, earlier, same_time = client(session_id, "aaaaaaaaaaaa", 20.0), client(session_id, "zzzzzzzzzzzz", 10.0), \
        client(session_id, "bbbbbbbbbbbb", 20.0)
    for record in (later, earlier, same_time):
        store.put_client(record)
    assert store.get_client(session_id, "aaaaaaaaaaaa") == later
    assert [c.client_id for c in store.list_clients(session_id)] == ["zzzzzzzzzzzz", "aaaaaaaaaaaa", "bbbbbbbbbbbb"]

    backend.clock.advance(7.25)
    store.touch_client(session_id, "aaaaaaaaaaaa")
    touched = store.get_client(session_id, "aaaaaaaaaaaa")
    assert touched is not None and touched.last_heartbeat == backend.clock()

    assert store.mark_client_gone(session_id, "zzzzzzzzzzzz")
    assert not store.mark_client_gone(session_id, "zzzzzzzzzzzz")
    assert [c.client_id for c in store.list_clients(session_id)] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    everyone = store.list_clients(session_id, active_only=False)
    assert [(c.client_id, c.status) for c in everyone] == [
        ("zzzzzzzzzzzz", "gone"), ("aaaaaaaaaaaa", "active"), ("bbbbbbbbbbbb", "active")]


def test_active_session_ids_split_live_from_expired_and_skip_ended(backend: Backend, session_id: str) -> None:
    store = backend.store
    live, short, ended = session_id + "l", session_id + "s", session_id + "e"
    store.create_session(live, None, TTL)
    store.create_session(short, None, 5)
    store.create_session(ended, None, TTL)
    store.mark_ended(ended)
    backend.clock.advance(6)
    lives, expired = store.active_session_ids()
    assert live in lives and short not in lives and ended not in lives
    assert short in expired and live not in expired and ended not in expired


def test_recent_sessions_are_live_ones_newest_first_and_bounded(backend: Backend, session_id: str) -> None:
    store = backend.store
    old, middle, new, short, ended = (session_id + suffix for suffix in "omnse")
    for sid in (old, middle, short, ended, new):
        store.create_session(sid, f"title {sid}", TTL if sid != short else 5)
        backend.clock.advance(2)
    store.mark_ended(ended)
    backend.clock.advance(4)  # short has expired now
    recent = store.recent_sessions(500)
    ours = [r.session_id for r in recent if r.session_id.startswith(session_id)]
    assert ours == [new, middle, old]
    assert [r.title for r in recent if r.session_id == new] == [f"title {new}"]
    created = [r.created_at for r in recent]
    assert created == sorted(created, reverse=True)
    assert len(store.recent_sessions(2)) <= 2
    assert [r.session_id for r in store.recent_sessions(1)] != [old]
    assert store.recent_sessions(0) == []
def test_a_session_is_replaceable_as_soon_as_it_reads_as_expired(backend: Backend, session_id: str) -> None:
    # Half a second past expires_at: invisible to reads, so creating it again must not be refused.
    store = backend.store
    store.create_session(session_id, None, 10)
    backend.clock.advance(10.5)
    assert store.get_session(session_id) is None
    record, created = store.create_session(session_id, None, TTL)
    assert created and record.active
