"""Requests to the app in process, as a client's HTTP would send them."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client


def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post(path, body=raw, headers={"Content-Type": "application/json", **(headers or {})})
