"""DynamoDB single table: session metadata, clients and the sequenced event log.

PK ``SESSION#{sid}``; SK ``METADATA`` | ``CLIENT#{cid}`` | ``EVENT#{incarnation}#{seq:010d}``. An
event's sequence number is allocated by the conditional write of the event itself (see ``append``),
so the log never has a gap or a duplicate however many writers race. Items carry ``expires_at`` for
TTL; reads filter expired items because TTL deletion is lazy (and moto never does it). For the same
reason a re-created session id gets a new incarnation (on METADATA): its events live under their
own key prefix, so the earlier incarnation's leftovers neither collide with nor show in the new log.
Sessions stored before incarnations existed have incarnation "" and keys ``EVENT#{seq:010d}``.
"""

from __future__ import annotations

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
from chalice_app.errors import Conflict, Gone, NotFound
from chalice_app.ports import Appended, ClientRecord, SessionRecord, StoredEvent

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
APPEND_ATTEMPTS = 60


def _pk(session_id: str) -> dict[str, Any]:
    return {"S": f"SESSION#{session_id}"}


def new_incarnation() -> str:
    return secrets.token_hex(4)


def _event_prefix(incarnation: str) -> str:
    return f"EVENT#{incarnation}#" if incarnation else "EVENT#"


def _event_sk(seq: int, incarnation: str) -> str:
    return f"{_event_prefix(incarnation)}{seq:010d}"


_SEQ = re.compile(r"^[0-9]{10}$")


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
            "expires_at": int(now + ttl_s), "fanout": {}, "last_sweep": 0, "incarnation": new_incarnation(),
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
                TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
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
        record = self.get_session(session_id)
        if record is None:
            raise NotFound(f"No session {session_id!r}. Create it first (webpage_create_session).")
        if active and not record.active:
            raise Gone(f"Session {session_id!r} has ended.")
        return record

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

    def set_master(self, session_id: str, new_master: str, expected: str | None) -> bool:
        """Compare-and-set the master; False when another request changed it first."""
        if expected is None:
            condition = "attribute_not_exists(master_client_id) AND #s = :active"
            values: dict[str, Any] = {":new": {"S": new_master}, ":active": {"S": "active"}}
        else:
            condition = "master_client_id = :old AND #s = :active"
            values = {":new": {"S": new_master}, ":old": {"S": expected}, ":active": {"S": "active"}}
        try:
            with aws_errors("changing the master"):
                self._db.update_item(
                    TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
                    UpdateExpression="SET master_client_id = :new", ConditionExpression=condition,
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
                TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
                UpdateExpression="SET #s = :ended", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":ended": {"S": "ended"}},
            )

    def add_to_fanout(self, session_id: str, client_id: str, live_queue_url: str) -> None:
        with aws_errors("adding a browser to the fan-out"):
            self._db.update_item(
                TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
                UpdateExpression="SET fanout.#c = :url", ExpressionAttributeNames={"#c": client_id},
                ExpressionAttributeValues={":url": {"S": live_queue_url}},
            )

    def remove_from_fanout(self, session_id: str, client_id: str) -> None:
        with aws_errors("removing a browser from the fan-out"):
            self._db.update_item(
                TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
                UpdateExpression="REMOVE fanout.#c", ExpressionAttributeNames={"#c": client_id},
            )

    def claim_sweep(self, session_id: str, previous: float, now: float) -> bool:
        """Take the session's sweep turn: of the browsers heartbeating, one sweeps per interval."""
        try:
            with aws_errors("claiming a sweep"):
                self._db.update_item(
                    TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
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
                    TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
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
                    TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
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
            "expires_at": record.expires_at, "incarnation": record.incarnation,
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

    def touch_client(self, session_id: str, client_id: str) -> None:
        with aws_errors("recording a heartbeat"):
            self._db.update_item(
                TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": f"CLIENT#{client_id}"}},
                UpdateExpression="SET last_heartbeat = :now",
                ExpressionAttributeValues={":now": {"N": repr(self._clock())}},
            )

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
        for attempt in range(APPEND_ATTEMPTS):
            seq += 1
            now = self._clock()
            event = {
                "PK": f"SESSION#{session_id}", "SK": _event_sk(seq, incarnation), "type": kind, "ts": _num(now),
                "s3_key": s3_key, "payload": None if payload is None else json.dumps(payload, sort_keys=True),
                "expires_at": int(now + ttl_s),
            }
            try:
                with aws_errors("appending an event"):
                    self._db.put_item(TableName=self._table, Item=_to_item(event),
                                      ConditionExpression="attribute_not_exists(SK)")
            except Exception as exc:
                if not _is_conditional_failure(exc):
                    raise
                # Another writer took this number; after a few collisions re-read the hint.
                if attempt % 4 == 3:
                    time.sleep(random.uniform(0, 0.002))
                    seq = max(seq, self.require_session(session_id, active=not allow_ended).seq)
                continue
            after = self._advance_hint(session_id, seq)
            stored = StoredEvent(seq=seq, type=kind, ts=now, s3_key=s3_key, payload=payload, incarnation=incarnation)
            return Appended(stored, after.fanout)
        raise Conflict(f"Too many concurrent writers on session {session_id!r}; try again.")

    def _advance_hint(self, session_id: str, seq: int) -> SessionRecord:
        """Move METADATA's seq up to ``seq``; returns METADATA as it is after our event was stored."""
        try:
            with aws_errors("advancing the sequence"):
                response = self._db.update_item(
                    TableName=self._table, Key={"PK": _pk(session_id), "SK": {"S": "METADATA"}},
                    UpdateExpression="SET seq = :seq", ConditionExpression="seq < :seq",
                    ExpressionAttributeValues={":seq": {"N": str(seq)}}, ReturnValues="ALL_NEW",
                )
            return _session(_from_item(response["Attributes"]))
        except Exception as exc:
            # A later writer already moved the hint past us: read METADATA as it is now.
            if not _is_conditional_failure(exc):
                raise
        return self.require_session(session_id, active=False)

    def events_after(self, session_id: str, after_seq: int, limit: int | None = None) -> list[StoredEvent]:
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
        fanout={str(k): str(v) for k, v in (data.get("fanout") or {}).items()},
        last_sweep=float(data.get("last_sweep", 0)), incarnation=str(data.get("incarnation", "")),
    )


def _client(data: dict[str, Any]) -> ClientRecord:
    return ClientRecord(
        session_id=str(data["session_id"]), client_id=str(data["client_id"]), status=str(data["status"]),
        joined_at=float(data["joined_at"]), last_heartbeat=float(data["last_heartbeat"]),
        live_queue_url=str(data["live_queue_url"]), history_queue_url=str(data["history_queue_url"]),
        expires_at=int(data["expires_at"]), incarnation=str(data.get("incarnation", "")),
    )


def _event(data: dict[str, Any], incarnation: str) -> StoredEvent:
    payload = data.get("payload")
    return StoredEvent(
        seq=int(str(data["SK"]).rsplit("#", 1)[1]), type=str(data["type"]), ts=float(data["ts"]),
        s3_key=data.get("s3_key"), payload=None if payload is None else json.loads(payload), incarnation=incarnation,
    )
