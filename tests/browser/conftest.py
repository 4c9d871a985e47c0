"""Fixtures of the browser tests: Chromium, and a server with only the static site mounted.

Tests that need the whole backend use the local stack from tests/conftest.py instead.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from chalice import Chalice
from chalice.config import Config
from chalice.local import create_local_server

from chalice_app.settings import Settings
from chalice_app.static_site import VENDOR, mount_static
from tests.browser.harness import RENDERER_DIED, Browsers, chromium


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Per module, not per session: playwright's sync API keeps an asyncio loop running in this thread
# while it lives, which breaks asyncio.run()/anyio in any test that runs after the browser tests.
@pytest.fixture(scope="module")
def browsers_session() -> Iterator[Browsers]:
    if not (VENDOR / "pyodide" / "pyodide.asm.wasm").is_file():
        pytest.fail("the runtime is not installed: run `npm ci && python scripts/install_web_assets.py`")
    with chromium() as browsers:
        yield browsers


@pytest.fixture
def browsers(browsers_session: Browsers, request: pytest.FixtureRequest) -> Iterator[Browsers]:
    """Fresh contexts and a fresh request log per test, on the one shared Chromium.

    After a renderer died under a test, the next test (its rerun, tests/conftest.py) gets a new
    Chromium: in one full run a renderer died in the rerun too, on the same browser.
    """
    browsers_session.requests.clear()
    browsers_session.console.clear()
    yield browsers_session
    if request.node.stash.get(RENDERER_DIED, False):
        browsers_session.relaunch()  # its contexts go with it
    else:
        for context in browsers_session.contexts:
            context.close()
    browsers_session.contexts.clear()
    external = browsers_session.external_requests()
    assert external == [], f"the page made requests to other hosts: {external}"


@pytest.fixture(scope="session")
def static_server() -> Iterator[str]:
    """The static routes alone, served by Chalice's local server (threaded, like `chalice local`)."""
    app = Chalice("pbfm-static-test")
    mount_static(app, lambda: Settings(aws_endpoint_url="http://127.0.0.1:1"))
    port = _free_port()
    server = create_local_server(app, Config.create(chalice_stage="dev", app_name=app.app_name), "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)
