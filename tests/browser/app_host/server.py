"""The test chat host's two origins: the host page and, on another port, its sandbox proxy.

As the extension's reference host does, the sandbox page is served with the view's CSP as an HTTP
header (tamper-proof, unlike a meta tag), built from the ``_meta.ui.csp`` the host passes in its
``?csp=`` query. Two policies:

- ``"reference"``: what ``examples/basic-host`` sends (``'unsafe-eval'`` among the script sources);
- ``"strict"``: built from the specification's text alone (no ``'unsafe-eval'``, no
  ``'wasm-unsafe-eval'``): the view cannot run Python there and must say so.

Both origins are 127.0.0.1 on their own ports (the browser tests resolve no other name).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.browser.app_host.build import ensure_bundle

HERE = Path(__file__).resolve().parent
POLICIES = ("reference", "strict")
_UNSAFE_ENTRY = re.compile(r"[;\r\n'\" ]")


def _domains(csp: dict[str, Any], key: str) -> str:
    values = csp.get(key) or []
    # As the reference host: an entry that could smuggle a keyword or a directive is dropped.
    return " ".join(v for v in values if isinstance(v, str) and not _UNSAFE_ENTRY.search(v))


def csp_header(csp: dict[str, Any], policy: str) -> str:
    resources, connects = _domains(csp, "resourceDomains"), _domains(csp, "connectDomains")
    frames, bases = _domains(csp, "frameDomains"), _domains(csp, "baseUriDomains")
    if policy == "reference":
        scripts = f"'self' 'unsafe-inline' 'unsafe-eval' blob: data: {resources}"
        default = "default-src 'self' 'unsafe-inline'"
    else:
        scripts = f"'self' 'unsafe-inline' {resources}"
        default = "default-src 'none'"
    directives = [
        default,
        f"script-src {scripts}".strip(),
        f"style-src 'self' 'unsafe-inline' {resources}".strip(),
        f"img-src 'self' data: {resources}".strip(),
        f"font-src 'self' {resources}".strip(),
        f"media-src 'self' data: {resources}".strip(),
        f"connect-src 'self' {connects}".strip(),
        f"frame-src {frames}" if frames else "frame-src 'none'",
        "object-src 'none'",
        f"base-uri {bases}" if bases else "base-uri 'self'",
    ]
    return "; ".join(directives)


class AppHost:
    """Serves host.html (+ its bundle) on one port and sandbox.html (+ sandbox.js) on another."""

    def __init__(self, policy: str = "reference") -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}")
        self.policy = policy
        self.bundle = ensure_bundle()
        self._servers: list[ThreadingHTTPServer] = []
        # Every CSP header the sandbox origin sent, in order (tests check what the view ran under).
        self.csp_sent: list[str] = []

    def start(self, host_port: int = 0) -> AppHost:
        """Serve on ``host_port`` (0: any free port) and the sandbox on the next port up (any, for 0)."""
        page = {"/": ("host.html", "text/html; charset=utf-8"),
                "/host.bundle.js": (self.bundle, "text/javascript; charset=utf-8")}
        proxy = {"/sandbox.html": ("sandbox.html", "text/html; charset=utf-8"),
                 "/sandbox.js": ("sandbox.js", "text/javascript; charset=utf-8")}
        host = self._serve(port=host_port, files=page, sandbox=False)
        sandbox = self._serve(port=host_port + 1 if host_port else 0, files=proxy, sandbox=True)
        self.host_url = f"http://127.0.0.1:{host.server_address[1]}"
        self.sandbox_origin = f"http://127.0.0.1:{sandbox.server_address[1]}"
        self.sandbox_url = f"{self.sandbox_origin}/sandbox.html"
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def _serve(self, *, port: int, files: dict[str, tuple[str | Path, str]], sandbox: bool) -> ThreadingHTTPServer:
        app_host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                entry = files.get(parts.path)
                if entry is None:
                    self.send_error(404)
                    return
                name, content_type = entry
                body = (name if isinstance(name, Path) else HERE / name).read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Cache-Control", "no-store")
                if sandbox and parts.path == "/sandbox.html":
                    query = parse_qs(parts.query).get("csp", ["{}"])[0]
                    try:
                        declared = json.loads(query)
                    except ValueError:
                        declared = {}
                    header = csp_header(declared if isinstance(declared, dict) else {}, app_host.policy)
                    app_host.csp_sent.append(header)
                    self.send_header("Content-Security-Policy", header)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return server


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description="The test chat host, by hand (see the README).")
    parser.add_argument("--port", type=int, default=8080, help="the host page's port; the sandbox takes the next")
    parser.add_argument("--policy", choices=POLICIES, default="reference")
    options = parser.parse_args()
    running = AppHost(options.policy).start(options.port)
    print(f"host page {running.host_url}/  sandbox origin {running.sandbox_origin} (policy {options.policy})")
    print(f"serve with PBFM_VIEW_ORIGINS={running.sandbox_origin}, then open "
          f"{running.host_url}/?server=http://127.0.0.1:8000/mcp&session=team")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()
