"""The blob store's contract: MemoryBlobStore and S3BlobStore over moto, same tests."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from chalice_app.errors import UpstreamError
from tests.contract.backend import Backend


def test_documents_round_trip_and_report_their_size(backend: Backend, session_id: str) -> None:
    document = {"title": "t", "blocks": [{"kind": "text", "text": "héllo"}], "n": 1.5}
    key = f"layouts/{session_id}/one.json"
    size = backend.blobs.put_json(key, document)
    assert backend.blobs.get_json(key) == document
    assert size == len(b'{"blocks":[{"kind":"text","text":"h\\u00e9llo"}],"n":1.5,"title":"t"}')


def test_a_missing_document_is_an_upstream_error(backend: Backend, session_id: str) -> None:
    with pytest.raises(UpstreamError):
        backend.blobs.get_json(f"layouts/{session_id}/missing.json")


def test_a_presigned_url_names_bucket_key_and_expiry(backend: Backend, session_id: str) -> None:
    key = f"sessions/{session_id}/prices/a b.json"
    backend.blobs.put_json(key, {"x": 1})
    url = urlsplit(backend.blobs.presign(key, expires_s=120))
    assert url.scheme in ("http", "https")
    assert url.path == f"/{backend.blobs.bucket}/{quote(key)}"
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["120"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_listing_by_prefix(backend: Backend, session_id: str) -> None:
    keys = [f"sessions/{session_id}/prices/{n}.json" for n in ("b", "a", "c")]
    for key in keys:
        backend.blobs.put_json(key, {"k": key})
    backend.blobs.put_json(f"layouts/{session_id}/x.json", {})
    assert backend.blobs.list_keys(f"sessions/{session_id}/") == sorted(keys)
    assert backend.blobs.list_keys(f"sessions/{session_id}-none/") == []
