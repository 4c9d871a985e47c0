"""The embedded AWS's state on disk, so a restart of ``serve``/``demo`` loses nothing.

moto keeps everything in memory. The local stack saves the table's items and the bucket's objects
into a state directory when it stops (and every ``SAVE_EVERY_S`` while it runs) and loads them
back into the fresh moto when it starts. Queues are not saved: a page whose queues are gone joins
again (410) and gets its history anew, which the onboarding already handles. The cookie secret
lives here too, so cookies stay valid across restarts; the directory is never part of the repo.

A save is written to a sibling directory and swapped in with renames: a crash mid-save leaves the
previous save intact. Documents never change under their key (keys are never reused), so a save
hard-links those the previous save already holds and downloads only the new ones: after the
periodic saves, the one on Ctrl-C costs the table scan and the last few documents.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / ".pbfm-state"
ITEMS_FILE = "table-items.jsonl"
OBJECTS_DIR = "objects"
CONTENT_TYPES_FILE = "content-types.json"
SECRET_FILE = "cookie-secret"
DYNAMODB_BATCH = 25


@dataclass(frozen=True)
class Restored:
    items: int
    objects: int
    seconds: float


class StateDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def saved(self) -> Path:
        return self.path / "saved"

    def cookie_secret(self) -> str:
        """This machine's local cookie secret, made once (readable by its owner only)."""
        self.path.mkdir(parents=True, exist_ok=True)
        secret_file = self.path / SECRET_FILE
        if not secret_file.exists():
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
        return secret_file.read_text().strip()

    def clear(self) -> None:
        """Forget the saved AWS state (``--fresh``); the cookie secret stays."""
        shutil.rmtree(self.saved, ignore_errors=True)

    # -- save ----------------------------------------------------------------------------------

    def save(self, s3: Any, dynamodb: Any, *, table: str, bucket: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        staging = self.path / f"saving-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / OBJECTS_DIR).mkdir(parents=True)
        with (staging / ITEMS_FILE).open("w") as out:
            for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                for item in page["Items"]:
                    out.write(json.dumps(item, separators=(",", ":"), default=_encode_binary) + "\n")
        content_types: dict[str, str] = {}
        try:
            saved_types: dict[str, str] = json.loads((self.saved / CONTENT_TYPES_FILE).read_text())
        except (OSError, ValueError):
            saved_types = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                key = entry["Key"]
                target = _object_path(staging / OBJECTS_DIR, key)
                target.parent.mkdir(parents=True, exist_ok=True)
                kept = _object_path(self.saved / OBJECTS_DIR, key)
                if key in saved_types and kept.is_file():
                    os.link(kept, target)
                    content_types[key] = saved_types[key]
                    continue
                answer = s3.get_object(Bucket=bucket, Key=key)
                target.write_bytes(answer["Body"].read())
                content_types[key] = answer.get("ContentType", "application/octet-stream")
        (staging / CONTENT_TYPES_FILE).write_text(json.dumps(content_types))
        previous = self.path / f"previous-{os.getpid()}"
        if self.saved.exists():
            self.saved.rename(previous)
        staging.rename(self.saved)
        shutil.rmtree(previous, ignore_errors=True)

    # -- restore -------------------------------------------------------------------------------

    def restore(self, s3: Any, dynamodb: Any, *, table: str, bucket: str) -> Restored:
        """Load the last save into empty resources; nothing saved yet is an empty restore."""
        began = time.monotonic()
        items = objects = 0
        if not self.saved.is_dir():
            return Restored(0, 0, 0.0)
        batch: list[dict[str, Any]] = []
        with (self.saved / ITEMS_FILE).open() as lines:
            for line in lines:
                batch.append({"PutRequest": {"Item": json.loads(line, object_hook=_decode_binary)}})
                if len(batch) == DYNAMODB_BATCH:
                    items += _write_batch(dynamodb, table, batch)
                    batch = []
        items += _write_batch(dynamodb, table, batch)
        content_types = json.loads((self.saved / CONTENT_TYPES_FILE).read_text())
        for key, content_type in content_types.items():
            body = _object_path(self.saved / OBJECTS_DIR, key).read_bytes()
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
            objects += 1
        return Restored(items, objects, time.monotonic() - began)


def _encode_binary(value: Any) -> Any:
    # boto3 hands DynamoDB's B and BS values over as bytes.
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot save {type(value).__name__}")


def _decode_binary(value: dict[str, Any]) -> Any:
    if set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value


def _object_path(root: Path, key: str) -> Path:
    # Keys are ours ("sessions/<sid>/…"), but never let one climb out of the directory.
    parts = [p for p in key.split("/") if p not in ("", ".", "..")]
    return root.joinpath(*parts) if parts else root / "_"


def _write_batch(dynamodb: Any, table: str, batch: list[dict[str, Any]]) -> int:
    pending = {table: batch}
    while pending.get(table):
        answer = dynamodb.batch_write_item(RequestItems=pending)
        pending = answer.get("UnprocessedItems") or {}
    return len(batch)
