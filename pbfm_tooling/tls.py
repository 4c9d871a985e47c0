"""One verifying TLS context for every httpx client this process makes.

httpx builds a new context for each client unless handed one, and building one loads the CA bundle:
~25 ms of CPU, for a client that may send one request (a page runner's tab has two clients; a test
helper makes one per call). The context is the one httpx would build (``verify=True``).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
