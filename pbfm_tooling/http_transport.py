"""The page's ``Http`` in CPython: what ``pyfetch`` does in the browser, over ``httpx.AsyncClient``.

One instance is one browser tab: its own cookie jar (the signed ``pbfm_{sid}`` cookie the server
sets on join) and its own ``X-PBFM-Tab`` header, so it is its own participant exactly as a tab of a
real browser is. Presigned S3 URLs (and SQS receives) are fetched by a second client that never carries cookies
(``fetch(..., credentials: "omit")`` in the page). A request that does not get an answer raises
``TransportError``, which ``SessionManager`` treats as the network being down (back off, retry).
"""

from __future__ import annotations

from typing import Any

import httpx

from pbfm_tooling.tls import tls_context
from web_py.session_manager import TransportError

TIMEOUT_S = 60.0  # above the longest poll (20 s) plus a slow server's answer


class HttpxTransport:
    """``web_py.session_manager.Http`` for one tab: POSTs to our server, GETs of presigned URLs."""

    def __init__(self, base_url: str, *, cookies: httpx.Cookies | None = None, tab_id: str = "",
                 timeout_s: float = TIMEOUT_S) -> None:
        self.tab_id = tab_id
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, cookies=cookies,
                                        headers={"X-PBFM-Tab": tab_id}, verify=tls_context())
        self.documents = httpx.AsyncClient(timeout=timeout_s, verify=tls_context())

    @property
    def cookies(self) -> httpx.Cookies:
        return self.client.cookies

    async def post(self, path: str, body: dict[str, Any], *, read_timeout_s: float | None = None) -> tuple[int, Any]:
        """``read_timeout_s``: give up on the answer this soon (the chaos run cuts polls with it)."""
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if read_timeout_s is not None:
            timeout = httpx.Timeout(self.client.timeout.connect, read=read_timeout_s)
        try:
            response = await self.client.post(path, json=body, timeout=timeout)
        except httpx.TransportError as exc:
            raise TransportError(f"POST {path}: {exc!r}") from exc
        return response.status_code, _json(response)

    async def get_json(self, url: str) -> tuple[int, Any]:
        try:
            response = await self.documents.get(url)
        except httpx.TransportError as exc:
            raise TransportError(f"GET document: {exc!r}") from exc
        return response.status_code, _json(response)

    async def get_text(self, url: str, *, read_timeout_s: float | None = None) -> tuple[int, str | None]:
        """A presigned SQS receive (no cookies); ``read_timeout_s`` as for ``post``."""
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if read_timeout_s is not None:
            timeout = httpx.Timeout(self.documents.timeout.connect, read=read_timeout_s)
        try:
            response = await self.documents.get(url, timeout=timeout)
        except httpx.TransportError as exc:
            raise TransportError(f"GET queue: {exc!r}") from exc
        return response.status_code, response.text

    async def raw_post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """The whole response (headers included), for tests that check what the server sends."""
        return await self.client.post(path, json=body)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.documents.aclose()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
