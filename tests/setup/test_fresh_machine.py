"""``./dev.sh setup`` on a fresh clone: every install step runs for real, none is skipped.

A machine that already has chromium, the venvs and node_modules skips those steps, so a broken
step can hide there (the chromium step once exited 127 on every machine without chromium while CI
stayed green). Here a clean clone has no venv, no node_modules and no runtime copy, and
``PBFM_CHROMIUM`` names a missing binary so the apt-get step runs too (as root here, as in CI).

Slow (a full pip + npm install), so it is not part of the default run: ``.ci/run`` runs it with
``./dev.sh test -m fresh_machine``.
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.fresh_machine


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "PBFM_"))}
    env.update(extra)
    return env


def test_setup_installs_everything_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = _clean_env(PBFM_CHROMIUM=str(tmp_path / "no-chromium-here"))

    result = subprocess.run(["./dev.sh", "setup"], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    python = clone / ".venv" / "bin" / "python"
    imports = "import chalice_app, web_py, pbfm_tooling, bench, moto, mcp, httpx, playwright, hypothesis, mypy"
    where = subprocess.run([str(python), "-c", imports + "; print(chalice_app.__file__)"], cwd=tmp_path,
                           env=_clean_env(), capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(clone / "chalice_app" / "__init__.py")
    assert (clone / "node_modules" / ".bin" / "mcp-inspector").exists()
    assert (clone / "web_static" / "vendor" / "pyodide").is_dir()
    # Pyodide's standard library, compiled by Pyodide under Node (pbfm_tooling/stdlib_bytecode.py).
    with zipfile.ZipFile(clone / "web_static" / "vendor" / "pyodide" / "python_stdlib.zip") as stdlib:
        assert "asyncio/__init__.pyc" in stdlib.namelist()
    assert (clone / "web_static" / "vendor" / "pyscript").is_dir()
    mcp1 = subprocess.run([str(clone / ".venv-mcp1" / "bin" / "python"), "-c",
                           "import importlib.metadata as m; print(m.version('mcp'))"],
                          capture_output=True, text=True, check=True)
    assert mcp1.stdout.strip().startswith("1.")
    assert Path("/usr/bin/chromium").exists()

    # A second run finds every step done: no stamp is rewritten, so nothing was reinstalled.
    stamps = [clone / ".venv" / ".pbfm-stamp", clone / "node_modules" / ".pbfm-stamp"]
    before = [p.stat().st_mtime_ns for p in stamps]
    again = subprocess.run(["./dev.sh", "setup"], cwd=clone, env=_clean_env(), capture_output=True, text=True,
                           timeout=600, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [p.stat().st_mtime_ns for p in stamps] == before


UV_VERSION = "0.13.9"


def test_the_product_specs_uv_command_works_on_a_fresh_clone(tmp_path: Path) -> None:
    """The spec's own words: ``TEST_SESSION=mvp-test-1 uv run python scripts/test_mvp.py --single-browser``."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    tools = tmp_path / "uv-venv"
    subprocess.run(["python3", "-m", "venv", str(tools)], check=True)
    subprocess.run([str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
                   check=True, capture_output=True)
    env = _clean_env(TEST_SESSION="mvp-test-1", PATH=f"{tools / 'bin'}:{os.environ['PATH']}")
    result = subprocess.run(["uv", "run", "python", "scripts/test_mvp.py", "--single-browser"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "0 failed" in result.stdout and "PASS  price appears" in result.stdout
