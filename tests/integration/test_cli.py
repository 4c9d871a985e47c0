"""`pbfm-webpage serve` and `demo` as a user runs them: a real process, stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.slow


def start(*args: str, state_dir: str | None = None, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    # Never the project's own .pbfm-state: a directory of the test's (or of this start) unless given.
    state = ["--state-dir", state_dir or tempfile.mkdtemp(prefix="pbfm-cli-state-")]
    process = subprocess.Popen(
        [sys.executable, "-m", "pbfm_tooling.cli", *args, *state, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    for line in process.stdout:
        match = re.search(r"MCP:\s+(http://\S+)/mcp", line)
        if match:
            return process, match.group(1)
        assert time.monotonic() < deadline, "the server did not announce its URLs"
    raise AssertionError("the server exited before announcing its URLs")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


@pytest.fixture
def demo() -> Iterator[str]:
    process, base_url = start("demo", "--interval", "0.5", "--price-source", "simulated")
    try:
        yield base_url
    finally:
        if process.poll() is None:
            assert "stopped" in stop(process)


def test_serve_answers_and_stops_cleanly_on_ctrl_c() -> None:
    process, base_url = start("serve")
    try:
        created = httpx.post(f"{base_url}/api/webpage_create_session", json={"session_id": "cli"})
        assert created.status_code == 200 and created.json()["created"] is True
        assert httpx.get(f"{base_url}/api/openapi.json").json()["info"]["title"] == "pb-fm-webpage"
    finally:
        output = stop(process)
    assert "stopped" in output


def test_demo_creates_the_demo_session_and_keeps_the_price_moving(demo: str) -> None:
    def last_seq() -> int:
        response = httpx.post(f"{demo}/api/webpage_get_session_status", json={"session_id": "demo"})
        return int(response.json()["last_seq"]) if response.status_code == 200 else 0

    deadline = time.monotonic() + 30
    while last_seq() < 3:
        assert time.monotonic() < deadline, "the demo assistant did not publish prices"
        time.sleep(0.3)
    page = httpx.get(f"{demo}/session/demo")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
