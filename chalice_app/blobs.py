"""S3: JSON documents by key, and presigned URLs so browsers fetch content directly."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from chalice_app.aws import aws_errors
from chalice_app.errors import InvalidInput

# Where each kind of document lives; session-scoped data sits under sessions/ so one lifecycle
# rule expires it with the session.
KEY_PREFIXES = {
    "price": "sessions/{sid}/prices/",
    "snapshot": "sessions/{sid}/snapshots/",
    "archive": "sessions/{sid}/archive/",
    "layout": "layouts/{sid}/",
    "component": "components/{sid}/",
    "dataset": "datasets/{sid}/",
}
PRESIGN_SECONDS = 6 * 3600


def generate_key(kind: str, session_id: str, name: str | None = None) -> str:
    """A fresh, never-reused key, so documents are immutable and safe to cache by key."""
    if kind not in KEY_PREFIXES:
        raise InvalidInput(f"unknown document kind {kind!r}; one of {sorted(KEY_PREFIXES)}")
    stem = name or f"{int(time.time() * 1000):013d}-{secrets.token_hex(4)}"
    return KEY_PREFIXES[kind].format(sid=session_id) + stem + ".json"


def encode_document(document: Any) -> bytes:
    """A document's bytes as stored (compact, keys sorted): every blob store writes these."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


class S3BlobStore:
    def __init__(self, s3: Any, bucket: str, cache_size: int = 2048, *, presigner: Any = None) -> None:
        self._s3 = s3
        self._presigner = presigner or s3
        self._bucket = bucket
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        return self._bucket

    def put_json(self, key: str, document: Any) -> int:
        body = encode_document(document)
        with aws_errors("storing a document in S3"):
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType="application/json",
                CacheControl="private, max-age=31536000, immutable",
            )
        self._remember(key, document)
        return len(body)

    def get_json(self, key: str) -> Any:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        with aws_errors("reading a document from S3"):
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        document = json.loads(body)
        self._remember(key, document)
        return document

    def presign(self, key: str, expires_s: int = PRESIGN_SECONDS) -> str:
        with aws_errors("presigning an S3 URL"):
            return str(
                self._presigner.generate_presigned_url(
                    "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_s
                )
            )

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with aws_errors("listing S3 documents"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def _remember(self, key: str, document: Any) -> None:
        with self._lock:
            self._cache[key] = document
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
