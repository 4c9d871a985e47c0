"""Fixtures for the deployment tests: a moto server in its own process.

The server runs in a subprocess so that ``MOTO_DISABLE_GLOBAL_CORS`` is set before moto is imported
there, whatever other tests in this pytest process imported first: with it, the bucket's own CORS
rules answer preflights, as S3 does.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

_SERVER = """
import os, sys
os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
from pbfm_tooling.moto_server import EmbeddedAwsServer
server = EmbeddedAwsServer("127.0.0.1", 0)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test process closes our stdin
server.stop()
"""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    env = {**os.environ, "MOTO_DISABLE_GLOBAL_CORS": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        # werkzeug's request log would bury every failure report.
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = ""
    for line in proc.stdout:  # moto prints its own banner first
        if line.startswith("PORT "):
            port = line.split()[1]
            break
    if not port.isdigit():
        proc.kill()
        raise RuntimeError("moto server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="module", autouse=True)
def project_tree_to_ourselves(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One deploy module at a time across the parallel run's workers: packaging links ``vendor/``
    and runs ``chalice package`` in the project tree itself. (A lock file beside the workers' temp
    directories; without xdist, there is no one else to wait for.)"""
    lock = tmp_path_factory.getbasetemp().parent / "pbfm-project-tree.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that can only ever reach moto; never the machine's own."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``chalice package`` with the merge template, once per stage: the directory with sam.json + zip."""
    from pbfm_tooling import deploy

    done: dict[str, Path] = {}

    def package(stage: str) -> Path:
        if stage not in done:
            out = tmp_path_factory.mktemp(f"out-{stage}")
            done[stage] = deploy.package(deploy.Stage.load(stage), out, run=_quiet_run)
        return done[stage]

    return package


def _quiet_run(cmd: Sequence[str], env: Mapping[str, str]) -> None:
    result = subprocess.run(list(cmd), env=dict(env), capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
