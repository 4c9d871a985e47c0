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

The request line and headers are read by this handler too, not by ``http.server``: that one hands
the header block to the email parser, ~0.35 ms a request (measured: 2.5 → 2.15 ms per ``GetItem``).
It keeps http.server's limits and answers, and is stricter where clients never go: HTTP/0.9 and
folded header lines (obsolete since RFC 7230) are refused with a 400.

``stop`` also ends the connections that are still open, idle or not: no thread of a stopped stack
answers a call that arrives later on an old connection.
"""

from __future__ import annotations

import contextlib
import http.client
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
# http.server's limits (http.client's _MAXLINE and _MAXHEADERS).
_MAX_LINE = 65536
_MAX_HEADERS = 100
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

    def parse_request(self) -> bool:
        """The request line and headers into ``command``, ``path``, ``request_version`` and
        ``headers``, as http.server's would; False once an error has been answered."""
        self.command = ""  # not the last request's: an error answer below must not be taken for a HEAD's
        # Until the request's own is read: an error answer has a status line (http.server's, as
        # HTTP/0.9, would be a bare body).
        self.request_version = "HTTP/1.0"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3:
            self.send_error(400, f"Bad request syntax ({self.requestline!r})")
            return False
        command, path, version = words
        number = _version(version)
        if number is None:
            self.send_error(400, f"Bad request version ({version!r})")
            return False
        if number >= (2, 0):
            self.send_error(505, f"Invalid HTTP version ({version})")
            return False
        self.request_version = version
        self.close_connection = number < (1, 1)
        # As http.server: "//host/x" must not read as a host-relative URL further on.
        self.command, self.path = command, "/" + path.lstrip("/") if path.startswith("//") else path
        headers = self._read_headers()
        if headers is None:
            return False
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        # Expect: 100-continue is answered once, by run_wsgi (http.server's would answer it too).
        return True

    def _read_headers(self) -> http.client.HTTPMessage | None:
        fields: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(431, "Line too long")
                return None
            if line in (b"\r\n", b"\n", b""):
                break
            if len(fields) == _MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return None
            name, colon, value = str(line, "iso-8859-1").rstrip("\r\n").partition(":")
            # No name, whitespace in or around it (a folded line starts with some): refused.
            if not colon or not name or name != name.strip() or " " in name or "\t" in name:
                self.send_error(400, "Malformed header line")
                return None
            fields.append((name, value.lstrip(" \t")))  # trailing space kept, as http.server keeps it
        headers = http.client.HTTPMessage()
        for name, value in fields:
            headers[name] = value  # appends: a repeated header stays repeated
        return headers

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


def _version(text: str) -> tuple[int, int] | None:
    """``HTTP/1.1`` as (1, 1); None for anything that is not an HTTP version."""
    if not text.startswith("HTTP/"):
        return None
    major, dot, minor = text[5:].partition(".")
    if not dot or not (major.isdigit() and minor.isdigit() and major.isascii() and minor.isascii()):
        return None
    if len(major) > 10 or len(minor) > 10:
        return None
    return int(major), int(minor)


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

    handler_class: type[_KeepAliveHandler] = _KeepAliveHandler

    def __init__(self, host: str, port: int, app: WSGIApplication | None = None) -> None:
        super().__init__(host, port, app or DomainDispatcherApplication(create_backend_app), handler=self.handler_class)
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
