"""The event store's contract: the same tests on MemoryEventStore and on DynamoEventStore over moto."""

from __future__ import annotations

import threading

import pytest

from chalice_app.errors import Gone, NotFound
from chalice_app.ports import ClientRecord
from tests.contract.backend import Backend

TTL = 3600


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
    assert (first.status, first.seq, first.title, first.master_client_id, first.fanout) == ("active", 0, "title",
                                                                                           None, {})
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


def test_the_fan_out_set_is_returned_as_it_is_after_the_write(backend: Backend, session_id: str) -> None:
    store = backend.store
    store.create_session(session_id, None, TTL)
    store.add_to_fanout(session_id, "aaaaaaaaaaaa", "https://q/a")
    store.add_to_fanout(session_id, "bbbbbbbbbbbb", "https://q/b")
    store.add_to_fanout(session_id, "bbbbbbbbbbbb", "https://q/b")
    assert store.append(session_id, "PRICE_UPDATE", None, None, TTL).fanout == {
        "aaaaaaaaaaaa": "https://q/a", "bbbbbbbbbbbb": "https://q/b"}
    store.remove_from_fanout(session_id, "aaaaaaaaaaaa")
    store.remove_from_fanout(session_id, "cccccccccccc")
    assert store.append(session_id, "PRICE_UPDATE", None, None, TTL).fanout == {"bbbbbbbbbbbb": "https://q/b"}
    assert store.require_session(session_id).fanout == {"bbbbbbbbbbbb": "https://q/b"}


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


def test_a_session_is_replaceable_as_soon_as_it_reads_as_expired(backend: Backend, session_id: str) -> None:
    # Half a second past expires_at: invisible to reads, so creating it again must not be refused.
    store = backend.store
    store.create_session(session_id, None, 10)
    backend.clock.advance(10.5)
    assert store.get_session(session_id) is None
    record, created = store.create_session(session_id, None, TTL)
    assert created and record.active
