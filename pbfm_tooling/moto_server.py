"""The embedded AWS's HTTP server: moto's own app, answered over keep-alive connections.

moto's ``ThreadedMotoServer`` runs on werkzeug's development server, which ends every connection
after one answer (``Connection: close``). So every AWS call of the app opened a TCP connection and
started a server thread: measured here, ~0.4 ms of CPU per call on top of moto's own work, and
~17,000 such calls in one run of the test suite (the chaos test: 18.9 → 14.0 core-seconds).

This server keeps connections open, as AWS does: boto3's pooled connections carry call after call.
It stays werkzeug's threaded server with moto's request handler (one thread per connection, so a
20 s long poll holds only its own), and changes only how one request ends, so that the next one on
the connection starts where it should:

- the request body is read whole, by its ``Content-Length`` (or to its last chunk), before moto
  sees it, whether or not moto reads it;
- moto's answer is collected and sent with its own ``Content-Length``;
- anything that leaves the framing in doubt (a malformed length or chunk, a body cut short, an error in moto) closes the
  connection, as werkzeug always did.

``stop`` also ends the connections that are still open, idle or not: no thread of a stopped stack
answers a call that arrives later on an old connection.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import ThreadedWSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger(__name__)

_NO_BODY = frozenset({204, 304})
# Framing is ours: these come from moto's answer but describe the connection, not the answer.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class _KeepAliveHandler(MotoRequestHandler):
    """One connection, as many requests as its client sends (moto's handler ends it after one)."""

    protocol_version = "HTTP/1.1"
    # No idle timeout: on loopback a client that closes or exits ends its connections itself, and
    # closing idle ones from this side only adds keep-alive's race (a call sent as the server
    # closes fails, and the gateway's calls are not retried). ``stop`` ends those still open.
    server: EmbeddedAwsServer

    def setup(self) -> None:
        super().setup()
        # On a connection that lives on, Nagle's algorithm holds a small answer back until the
        # client's delayed ACK of the one before (~40 ms); a fresh connection per call never met it.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        body = self._read_body(environ)
        if body is None:
            self.close_connection = True
            self._send(400, "Bad Request", [("Content-Type", "text/plain")], b"malformed request body\n")
            return
        # The rest of the environ stays werkzeug's (a chunked body still reads as one to its end).
        environ["wsgi.input"] = io.BytesIO(body)
        self.environ = environ
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return _refuse_write

        try:
            data = _collect(self.server.app(environ, start_response))
            status, headers = answer
        except Exception:
            log.exception("the embedded AWS failed on %s %s", self.command, self.path)
            self.close_connection = True
            self._send(500, "Internal Server Error", [("Content-Type", "text/plain")], b"internal error\n")
            return
        code_text, _, reason = status.partition(" ")
        self._send(int(code_text), reason, headers, data)

    def _read_body(self, environ: dict[str, Any]) -> bytes | None:
        if environ.get("wsgi.input_terminated"):
            try:
                return bytes(environ["wsgi.input"].read())
            except OSError:  # werkzeug's de-chunking: a malformed chunk header, or the client gone
                return None
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            return None
        if size < 0:
            return None
        body = self.rfile.read(size) if size else b""
        # Shorter than announced: the client stopped sending; moto must not act on part of a request.
        return body if len(body) == size else None

    def _send(self, code: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(code, reason)
        declared = None
        for name, value in headers:
            if name.lower() == "content-length":
                declared = value
            if name.lower() not in _FRAMING:
                self.send_header(name, value)
        if self.command == "HEAD":
            # moto tells the size of what a GET would send; a HEAD answer carries no body.
            if declared is not None:
                self.send_header("Content-Length", declared)
            data = b""
        elif code in _NO_BODY or 100 <= code < 200:
            data = b""
        else:
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.wfile.flush()


def _refuse_write(data: bytes) -> None:
    raise RuntimeError("moto's apps return their answers; write() is not supported here")


def _collect(result: Iterable[bytes]) -> bytes:
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


class EmbeddedAwsServer(ThreadedWSGIServer):
    """moto's app on keep-alive connections; ``stop`` ends every connection, idle or busy."""

    def __init__(self, host: str, port: int, app: WSGIApplication | None = None) -> None:
        super().__init__(host, port, app or DomainDispatcherApplication(create_backend_app), handler=_KeepAliveHandler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    @property
    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # Wakes a thread waiting for the next request on it; one mid-request answers into nothing.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
