"""DynamoDB single table: session metadata, clients and the sequenced event log.

PK ``SESSION#{sid}``; SK ``METADATA`` | ``CLIENT#{cid}`` | ``FANOUT#{incarnation}#{cid}`` |
``COUNTER#{name}`` | ``EVENT#{incarnation}#{seq:010d}``. An event's sequence number is allocated by
the conditional write of the event itself (see ``append``), so the log never has a gap or a
duplicate however many writers race. Items carry ``expires_at`` for TTL; reads filter expired items
because TTL deletion is lazy (and moto never does it). For the same reason a re-created session id
gets a new incarnation (on METADATA, which the re-creation replaces whole: sequence, master, fan-out
version, roster, sweep and refresh claims start afresh): its events and fan-out entries live under
their own key prefix, so the earlier incarnation's leftovers neither collide with nor show in the
new one. Sessions stored before incarnations existed have incarnation "" and keys
``EVENT#{seq:010d}`` / ``FANOUT#{cid}``.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalice_app.aws import aws_errors, error_code
from chalice_app.errors import Conflict
from chalice_app.ports import Appended, ClientRecord, SessionRecord, StoredEvent, required_session

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
APPEND_ATTEMPTS = 60


def _pk(session_id: str) -> dict[str, Any]:
    return {"S": f"SESSION#{session_id}"}


def metadata_key(session_id: str) -> dict[str, Any]:
    """The key of a session's METADATA item (its sequence, master, status and ``expires_at``)."""
    return {"PK": _pk(session_id), "SK": {"S": "METADATA"}}


def new_incarnation() -> str:
    return secrets.token_hex(4)


def _event_prefix(incarnation: str) -> str:
    return f"EVENT#{incarnation}#" if incarnation else "EVENT#"


def _event_sk(seq: int, incarnation: str) -> str:
    return f"{_event_prefix(incarnation)}{seq:010d}"


_SEQ = re.compile(r"^[0-9]{10}$")


def _fanout_prefix(incarnation: str) -> str:
    return f"FANOUT#{incarnation}#" if incarnation else "FANOUT#"


def _fanout_sk(incarnation: str, client_id: str) -> str:
    return f"{_fanout_prefix(incarnation)}{client_id}"


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


class DynamoEventStore:
    """The event store on one DynamoDB table (see the module docstring for its layout)."""


    def __init__(self, dynamodb: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._db = dynamodb
        self._table = table
        self._clock = clock

    # -- sessions ------------------------------------------------------------------------------

    def create_session(self, session_id: str, title: str | None, ttl_s: int) -> tuple[SessionRecord, bool]:
        now = self._clock()
        values = {
            "PK": f"SESSION#{session_id}", "SK": "METADATA", "session_id": session_id, "status": "active",
            "seq": 0, "created_at": _num(now), "title": title, "snapshot_seq": 0,
            "expires_at": int(now + ttl_s), "fanout_version": 0, "last_sweep": 0, "master_heartbeat": 0,
            "roster_version": 0, "roster_announced": 0, "roster_announced_at": 0, "roster_seq": 0,
            "incarnation": new_incarnation(),
        }
        try:
            with aws_errors("creating a session"):
                self._db.put_item(
                    TableName=self._table, Item=_to_item(values),
                    # An expired or ended session is replaced; a live one is returned as it is.
                    ConditionExpression="attribute_not_exists(PK) OR expires_at < :now OR #s = :ended",
                    ExpressionAttributeNames={"#s": "status"},
                    # Rounded up: "expired" must mean what get_session means (expires_at < now).
                    ExpressionAttributeValues={":now": {"N": str(math.ceil(now))}, ":ended": {"S": "ended"}},
                )
        except Exception as exc:
            if _is_conditional_failure(exc):
                existing = self.get_session(session_id)
                if existing is not None:
                    return existing, False
            raise
        record = self.get_session(session_id)
        assert record is not None
        return record, True

    def get_session(self, session_id: str) -> SessionRecord | None:
        with aws_errors("reading a session"):
            response = self._db.get_item(
                TableName=self._table, Key=metadata_key(session_id),
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None:
            return None
        data = _from_item(item)
        if int(data["expires_at"]) < self._clock():
            return None
        return _session(data)

    def require_session(self, session_id: str, *, active: bool = True) -> SessionRecord:
        return required_session(self.get_session(session_id), session_id, active=active)

    def active_session_ids(self) -> tuple[list[str], list[str]]:
        """Sessions not ended: (live ones, ones whose TTL has passed and that still hold queues)."""
        live: list[str] = []
        expired: list[str] = []
        now = self._clock()
        with aws_errors("listing sessions"):
            paginator = self._db.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self._table,
                FilterExpression="SK = :meta AND #s = :active",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":meta": {"S": "METADATA"}, ":active": {"S": "active"}},
                ProjectionExpression="session_id, expires_at",
            ):
                for item in page.get("Items", []):
                    target = expired if int(item["expires_at"]["N"]) < now else live
                    target.append(item["session_id"]["S"])
        return live, expired

    def recent_sessions(self, limit: int) -> list[SessionRecord]:
        """Live sessions, newest first. A scan (there is no index by age); only ``limit`` are kept in memory."""
        now = self._clock()
        newest: list[tuple[float, str, SessionRecord]] = []
        with aws_errors("listing sessions"):
            paginator = self._db.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self._table,
                FilterExpression="SK = :meta AND #s = :active AND expires_at >= :now",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":meta": {"S": "METADATA"}, ":active": {"S": "active"},
                                           ":now": {"N": str(int(now))}},
            ):
                for item in page.get("Items", []):
                    data = _from_item(item)
                    if int(data["expires_at"]) < now:
                        continue
                    record = _session(data)
                    entry = (record.created_at, record.session_id, record)
                    if len(newest) < limit:
                        heapq.heappush(newest, entry)
                    elif limit > 0 and entry[:2] > newest[0][:2]:
                        heapq.heapreplace(newest, entry)
        return [record for _, _, record in sorted(newest, key=lambda e: e[:2], reverse=True)]

    def set_master(self, session_id: str, new_master: str, expected: str | None, *,
                   silent_before: float | None = None) -> bool:
        """Compare-and-set the master (its heartbeat starts now); False when another request changed it first,
        or when the master it replaces beat at or after ``silent_before`` (its beat landed since it was read)."""
        now = {"N": repr(self._clock())}
        if expected is None:
            condition = "attribute_not_exists(master_client_id) AND #s = :active"
            values: dict[str, Any] = {":new": {"S": new_master}, ":active": {"S": "active"}, ":now": now}
        else:
            condition = "master_client_id = :old AND #s = :active"
            values = {":new": {"S": new_master}, ":old": {"S": expected}, ":active": {"S": "active"}, ":now": now}
            if silent_before is not None:
                condition += " AND (attribute_not_exists(master_heartbeat) OR master_heartbeat < :silent_before)"
                values[":silent_before"] = {"N": repr(silent_before)}
        try:
            with aws_errors("changing the master"):
                self._db.update_item(
                    TableName=self._table, Key=metadata_key(session_id),
                    UpdateExpression="SET master_client_id = :new, master_heartbeat = :now",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues=values,
                )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def mark_ended(self, session_id: str) -> None:
        with aws_errors("ending a session"):
            self._db.update_item(
                TableName=self._table, Key=metadata_key(session_id),
                UpdateExpression="SET #s = :ended", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":ended": {"S": "ended"}},
            )

    def add_to_fanout(self, session_id: str, client_id: str, live_queue_url: str, *, incarnation: str,
                      expires_at: int) -> int:
        # The entry first, the version after it: a publish that reads the new version finds the entry.
        item = {"PK": f"SESSION#{session_id}", "SK": _fanout_sk(incarnation, client_id), "url": live_queue_url,
                "expires_at": expires_at}
        with aws_errors("adding a browser to the fan-out"):
            self._db.put_item(TableName=self._table, Item=_to_item(item))
        return self._bump(session_id, "fanout_version")

    def remove_from_fanout(self, session_id: str, client_id: str, *, incarnation: str) -> int:
        with aws_errors("removing a browser from the fan-out"):
            self._db.delete_item(TableName=self._table,
                                 Key={"PK": _pk(session_id), "SK": {"S": _fanout_sk(incarnation, client_id)}})
        return self._bump(session_id, "fanout_version")

    def fanout(self, session_id: str, *, incarnation: str | None = None) -> tuple[int, dict[str, str]]:
        # The version is read before the entries: they reflect every change up to it (or later).
        session = self.require_session(session_id, active=False)
        version = session.fanout_version
        now = self._clock()
        prefix = _fanout_prefix(session.incarnation if incarnation is None else incarnation)
        entries = {}
        for item in self._query(session_id, prefix, consistent=True):
            data = _from_item(item)
            client_id = str(data["SK"])[len(prefix):]
            # The legacy prefix "FANOUT#" also ranges over other incarnations' entries: skip those.
            if int(data["expires_at"]) >= now and "#" not in client_id:
                entries[client_id] = str(data["url"])
        return version, entries

    def _bump(self, session_id: str, attribute: str) -> int:
        with aws_errors("counting a change"):
            response = self._db.update_item(
                TableName=self._table, Key=metadata_key(session_id),
                UpdateExpression="ADD #a :one", ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW",
            )
        return int(response["Attributes"][attribute]["N"])

    def touch_master(self, session_id: str, client_id: str, now: float) -> bool:
        return self._conditional("recording the master's heartbeat",
                                 Key=metadata_key(session_id),
                                 UpdateExpression="SET master_heartbeat = :now",
                                 ConditionExpression="master_client_id = :me",
                                 ExpressionAttributeValues={":now": {"N": repr(now)}, ":me": {"S": client_id}})

    def bump_roster(self, session_id: str) -> None:
        self._bump(session_id, "roster_version")

    def claim_roster(self, session_id: str, previous: float, now: float) -> bool:
        return self._conditional(
            "claiming the participant announcement", Key=metadata_key(session_id),
            UpdateExpression="SET roster_announced_at = :now",
            ConditionExpression="attribute_not_exists(roster_announced_at) OR roster_announced_at = :previous",
            ExpressionAttributeValues={":now": {"N": repr(now)}, ":previous": {"N": repr(previous)}})

    def mark_roster_announced(self, session_id: str, version: int, seq: int) -> bool:
        # Ordered by the announcing event's seq, not by who writes last: the latest list in the log wins.
        return self._conditional(
            "recording the participant announcement", Key=metadata_key(session_id),
            UpdateExpression="SET roster_announced = :v, roster_seq = :seq",
            ConditionExpression="attribute_not_exists(roster_seq) OR roster_seq < :seq",
            ExpressionAttributeValues={":v": {"N": str(version)}, ":seq": {"N": str(seq)}})

    # -- counters (viewers of a session, tabs of a browser) ------------------------------------

    def _counter_key(self, session_id: str, counter: str) -> dict[str, Any]:
        return {"PK": _pk(session_id), "SK": {"S": f"COUNTER#{counter}"}}

    def reserve_slot(self, session_id: str, counter: str, limit: int, *, expires_at: int) -> bool:
        return self._conditional(
            "reserving a place", Key=self._counter_key(session_id, counter),
            UpdateExpression="ADD n :one SET expires_at = :exp, reserved_at = :now",
            ConditionExpression="attribute_not_exists(n) OR n < :limit",
            ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)},
                                       ":exp": {"N": str(expires_at)}, ":now": {"N": repr(self._clock())}})

    def release_slot(self, session_id: str, counter: str) -> None:
        self._conditional("releasing a place", Key=self._counter_key(session_id, counter),
                          UpdateExpression="ADD n :minus", ConditionExpression="n > :zero",
                          ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}})

    def slots(self, session_id: str, counter: str) -> int:
        with aws_errors("reading a counter"):
            item = self._db.get_item(TableName=self._table, Key=self._counter_key(session_id, counter),
                                     ConsistentRead=True).get("Item")
        return 0 if item is None else int(item.get("n", {"N": "0"})["N"])

    def set_slots(self, session_id: str, counter: str, value: int, *, expected: int, quiet_since: float) -> bool:
        session = self.require_session(session_id, active=False)
        return self._conditional(
            "correcting a counter", Key=self._counter_key(session_id, counter),
            UpdateExpression="SET n = :v, expires_at = :exp",
            ConditionExpression="n = :expected AND (attribute_not_exists(reserved_at) OR reserved_at <= :quiet)",
            ExpressionAttributeValues={":v": {"N": str(value)}, ":exp": {"N": str(session.expires_at)},
                                       ":expected": {"N": str(expected)}, ":quiet": {"N": repr(quiet_since)}})

    def _conditional(self, doing: str, **update: Any) -> bool:
        """One conditional UpdateItem: True when it applied, False when its condition failed."""
        try:
            with aws_errors(doing):
                self._db.update_item(TableName=self._table, **update)
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def claim_sweep(self, session_id: str, previous: float, now: float) -> bool:
        """Take the session's sweep turn: of the browsers heartbeating, one sweeps per interval."""
        try:
            with aws_errors("claiming a sweep"):
                self._db.update_item(
                    TableName=self._table, Key=metadata_key(session_id),
                    UpdateExpression="SET last_sweep = :now",
                    ConditionExpression="attribute_not_exists(last_sweep) OR last_sweep = :previous",
                    ExpressionAttributeValues={":now": {"N": repr(now)}, ":previous": {"N": repr(previous)}},
                )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def claim_refresh(self, session_id: str, not_after: float, now: float) -> bool:
        try:
            with aws_errors("claiming a price refresh"):
                self._db.update_item(
                    TableName=self._table, Key=metadata_key(session_id),
                    UpdateExpression="SET last_refresh = :now",
                    ConditionExpression="attribute_exists(PK) AND "
                                        "(attribute_not_exists(last_refresh) OR last_refresh <= :not_after)",
                    ExpressionAttributeValues={":now": {"N": repr(now)}, ":not_after": {"N": repr(not_after)}},
                )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def set_snapshot(self, session_id: str, seq: int, key: str) -> bool:
        try:
            with aws_errors("recording a snapshot"):
                self._db.update_item(
                    TableName=self._table, Key=metadata_key(session_id),
                    UpdateExpression="SET snapshot_seq = :seq, snapshot_key = :key",
                    ConditionExpression="snapshot_seq < :seq",
                    ExpressionAttributeValues={":seq": {"N": str(seq)}, ":key": {"S": key}},
                )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    # -- clients -------------------------------------------------------------------------------

    def put_client(self, record: ClientRecord) -> None:
        values = {
            "PK": f"SESSION#{record.session_id}", "SK": f"CLIENT#{record.client_id}",
            "session_id": record.session_id, "client_id": record.client_id, "status": record.status,
            "joined_at": _num(record.joined_at), "last_heartbeat": _num(record.last_heartbeat),
            "live_queue_url": record.live_queue_url, "history_queue_url": record.history_queue_url,
            "expires_at": record.expires_at, "browser_id": record.browser_id, "incarnation": record.incarnation,
            **({"in_chat": True} if record.in_chat else {}),
        }
        with aws_errors("registering a browser"):
            self._db.put_item(TableName=self._table, Item=_to_item(values))

    def get_client(self, session_id: str, client_id: str) -> ClientRecord | None:
        with aws_errors("reading a browser"):
            response = self._db.get_item(
                TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": f"CLIENT#{client_id}"}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return None if item is None else _client(_from_item(item))

    def list_clients(self, session_id: str, *, active_only: bool = True) -> list[ClientRecord]:
        clients = [
            _client(_from_item(item))
            for item in self._query(session_id, "CLIENT#", consistent=True)
        ]
        if active_only:
            clients = [c for c in clients if c.active]
        return sorted(clients, key=lambda c: (c.joined_at, c.client_id))

    def touch_client(self, session_id: str, client_id: str) -> bool:
        with aws_errors("recording a heartbeat"):
            response = self._db.update_item(
                TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": f"CLIENT#{client_id}"}},
                UpdateExpression="SET last_heartbeat = :now REMOVE away",
                ExpressionAttributeValues={":now": {"N": repr(self._clock())}}, ReturnValues="UPDATED_OLD",
            )
        return bool(_from_item(response.get("Attributes", {})).get("away"))

    def mark_client_away(self, session_id: str, client_id: str, silent_since: float) -> bool:
        return self._conditional(
            "marking a browser away", Key={"PK": _pk(session_id), "SK": {"S": f"CLIENT#{client_id}"}},
            UpdateExpression="SET away = :true",
            ConditionExpression="#s = :active AND last_heartbeat < :since AND attribute_not_exists(away)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":true": {"BOOL": True}, ":active": {"S": "active"},
                                       ":since": {"N": repr(silent_since)}})

    def mark_client_gone(self, session_id: str, client_id: str) -> bool:
        """Active → gone, once: True only for the caller that made the change."""
        try:
            with aws_errors("removing a browser"):
                self._db.update_item(
                    TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": f"CLIENT#{client_id}"}},
                    UpdateExpression="SET #s = :gone", ConditionExpression="#s = :active",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":gone": {"S": "gone"}, ":active": {"S": "active"}},
                )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    # -- events --------------------------------------------------------------------------------

    def append(self, session_id: str, kind: str, s3_key: str | None, payload: dict[str, Any] | None,
               ttl_s: int, *, allow_ended: bool = False) -> Appended:
        """Store an event under the next free sequence number; returns it with the fan-out set.

        The conditional put of ``EVENT#{seq}`` is the atomic allocation: of all writers trying the
        same number exactly one succeeds, the others move to the next. A number exists only once its
        event is stored, so the log has no gaps; METADATA's ``seq`` is a hint advanced afterwards.
        (A transaction would do the same in one call, but moto deep-copies the whole table on every
        ``TransactWriteItems`` and races under concurrent writers.)
        """
        session = self.require_session(session_id, active=not allow_ended)
        incarnation = session.incarnation
        seq = session.seq
        # Marks this append's item: when botocore retries a put whose answer was lost, the retry
        # fails the condition on our own item, which must count as our success, not another writer's.
        writer = secrets.token_hex(8)
        for attempt in range(APPEND_ATTEMPTS):
            seq += 1
            now = self._clock()
            event = {
                "PK": f"SESSION#{session_id}", "SK": _event_sk(seq, incarnation), "type": kind, "ts": _num(now),
                "s3_key": s3_key, "payload": None if payload is None else json.dumps(payload, sort_keys=True),
                "expires_at": int(now + ttl_s), "writer": writer,
            }
            try:
                with aws_errors("appending an event"):
                    self._db.put_item(TableName=self._table, Item=_to_item(event),
                                      ConditionExpression="attribute_not_exists(SK)",
                                      ReturnValuesOnConditionCheckFailure="ALL_OLD")
            except Exception as exc:
                if not _is_conditional_failure(exc):
                    raise
                if _conflicting_item(exc).get("writer", {}).get("S") == writer:
                    after = self._advance_hint(session_id, seq, incarnation)
                    return Appended(StoredEvent(seq=seq, type=kind, ts=now, s3_key=s3_key, payload=payload,
                                                incarnation=incarnation), after.fanout_version)
                # Another writer took this number; after a few collisions re-read the hint.
                if attempt % 4 == 3:
                    time.sleep(random.uniform(0, 0.002))
                    seq = max(seq, self.require_session(session_id, active=not allow_ended).seq)
                continue
            after = self._advance_hint(session_id, seq, incarnation)
            stored = StoredEvent(seq=seq, type=kind, ts=now, s3_key=s3_key, payload=payload, incarnation=incarnation)
            return Appended(stored, after.fanout_version)
        raise Conflict(f"Too many concurrent writers on session {session_id!r}; try again.")

    def _advance_hint(self, session_id: str, seq: int, incarnation: str) -> SessionRecord:
        """Move METADATA's seq up to ``seq``; returns METADATA as it is after our event was stored.

        Only within the event's incarnation: an append racing a re-creation of the session id must
        not start the new incarnation's log at the old one's numbers (a gap its pages cannot repair).
        """
        values: dict[str, Any] = {":seq": {"N": str(seq)}}
        if incarnation:
            condition = "seq < :seq AND incarnation = :inc"
            values[":inc"] = {"S": incarnation}
        else:
            condition = "seq < :seq AND attribute_not_exists(incarnation)"
        try:
            with aws_errors("advancing the sequence"):
                response = self._db.update_item(
                    TableName=self._table, Key=metadata_key(session_id),
                    UpdateExpression="SET seq = :seq", ConditionExpression=condition,
                    ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
                )
            return _session(_from_item(response["Attributes"]))
        except Exception as exc:
            # A later writer already moved the hint past us: read METADATA as it is now.
            if not _is_conditional_failure(exc):
                raise
        return self.require_session(session_id, active=False)

    def events_after(self, session_id: str, after_seq: int, limit: int | None = None, *,
                     incarnation: str | None = None) -> list[StoredEvent]:
        if incarnation is None:
            session = self.get_session(session_id)
            if session is None:
                return []
            incarnation = session.incarnation
        prefix = _event_prefix(incarnation)
        events: list[StoredEvent] = []
        now = self._clock()
        for item in self._query(session_id, prefix, consistent=True, start_after=_event_sk(after_seq, incarnation),
                                limit=limit):
            data = _from_item(item)
            # The legacy prefix "EVENT#" also ranges over other incarnations' keys: skip those.
            if int(data["expires_at"]) < now or not _SEQ.match(str(data["SK"])[len(prefix):]):
                continue
            events.append(_event(data, incarnation))
            if limit is not None and len(events) >= limit:
                break
        return events

    def _query(self, session_id: str, prefix: str, *, consistent: bool, start_after: str | None = None,
               limit: int | None = None) -> Iterator[dict[str, Any]]:
        if start_after is None:
            condition = "PK = :pk AND begins_with(SK, :prefix)"
            values: dict[str, Any] = {":pk": _pk(session_id), ":prefix": {"S": prefix}}
        else:
            # EVENT#%010d sorts numerically, so "after seq n" is a range on the sort key.
            condition = "PK = :pk AND SK BETWEEN :low AND :high"
            values = {":pk": _pk(session_id), ":low": {"S": start_after + "~"}, ":high": {"S": prefix + "~"}}
        kwargs: dict[str, Any] = {
            "TableName": self._table, "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values, "ConsistentRead": consistent,
        }
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            with aws_errors("querying a session"):
                response = self._db.query(**kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last


def _num(value: float) -> Any:
    from decimal import Decimal

    return Decimal(repr(value))


def _conflicting_item(exc: BaseException) -> dict[str, Any]:
    """The item a failed condition found (``ReturnValuesOnConditionCheckFailure=ALL_OLD``)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    item = cause.response.get("Item") if isinstance(cause, ClientError) else None
    return item if isinstance(item, dict) else {}


def _is_conditional_failure(exc: BaseException) -> bool:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return isinstance(cause, ClientError) and error_code(cause) in {
        "ConditionalCheckFailedException", "TransactionCanceledException", "TransactionConflictException",
    }


def _session(data: dict[str, Any]) -> SessionRecord:
    return SessionRecord(
        session_id=str(data["session_id"]), status=str(data["status"]), seq=int(data["seq"]),
        master_client_id=data.get("master_client_id"), created_at=float(data["created_at"]),
        title=data.get("title"), snapshot_seq=int(data.get("snapshot_seq", 0)),
        snapshot_key=data.get("snapshot_key"), expires_at=int(data["expires_at"]),
        fanout_version=int(data.get("fanout_version", 0)), last_sweep=float(data.get("last_sweep", 0)),
        master_heartbeat=float(data.get("master_heartbeat", 0)), roster_version=int(data.get("roster_version", 0)),
        roster_announced=int(data.get("roster_announced", 0)),
        roster_announced_at=float(data.get("roster_announced_at", 0)),
        incarnation=str(data.get("incarnation", "")),
    )


def _client(data: dict[str, Any]) -> ClientRecord:
    return ClientRecord(
        session_id=str(data["session_id"]), client_id=str(data["client_id"]), status=str(data["status"]),
        joined_at=float(data["joined_at"]), last_heartbeat=float(data["last_heartbeat"]),
        live_queue_url=str(data["live_queue_url"]), history_queue_url=str(data["history_queue_url"]),
        expires_at=int(data["expires_at"]), browser_id=data.get("browser_id"), away=bool(data.get("away", False)),
        in_chat=bool(data.get("in_chat", False)),
        incarnation=str(data.get("incarnation", "")),
    )


def _event(data: dict[str, Any], incarnation: str) -> StoredEvent:
    payload = data.get("payload")
    return StoredEvent(
        seq=int(str(data["SK"]).rsplit("#", 1)[1]), type=str(data["type"]), ts=float(data["ts"]),
        s3_key=data.get("s3_key"), payload=None if payload is None else json.loads(payload), incarnation=incarnation,
    )
