"""scripts/install_web_assets.py: copies the pinned runtime, refuses anything else."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_web_assets", ROOT / "scripts" / "install_web_assets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fake_node_modules(tmp: Path, pyodide_version: str) -> Path:
    from chalice_app.static_site import RUNTIME_VERSIONS

    nm = tmp / "node_modules"
    (nm / "pyodide").mkdir(parents=True)
    (nm / "pyodide" / "package.json").write_text(json.dumps({"version": pyodide_version}))
    for name in (
        "pyodide.mjs",
        "pyodide.asm.mjs",
        "pyodide.asm.wasm",
        "python_stdlib.zip",
        "pyodide-lock.json",
        "pyodide.mjs.map",
        "console.html",
    ):
        (nm / "pyodide" / name).write_text("x")
    dist = nm / "@pyscript" / "core" / "dist"
    dist.mkdir(parents=True)
    (nm / "@pyscript" / "core" / "package.json").write_text(json.dumps({"version": RUNTIME_VERSIONS["pyscript"]}))
    for name in ("core.js", "core.css", "core-abc.js"):
        (dist / name).write_text("x")
    return nm


def test_copies_served_files_only(tmp_path: Path) -> None:
    from chalice_app.static_site import RUNTIME_VERSIONS

    module = load()
    nm = fake_node_modules(tmp_path, RUNTIME_VERSIONS["pyodide"])
    target = tmp_path / "vendor"
    (target / "pyodide").mkdir(parents=True)
    (target / "pyodide" / "stale.js").write_text("old")
    assert module.main(["--node-modules", str(nm), "--target", str(target)]) == 0
    names = {p.name for p in (target / "pyodide").iterdir()}
    assert "pyodide.asm.wasm" in names and "pyodide.mjs.map" not in names and "console.html" not in names
    assert "stale.js" not in names
    assert (target / "pyscript" / "core-abc.js").is_file()


def test_missing_node_modules_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = load()
    assert module.main(["--node-modules", str(tmp_path / "nope"), "--target", str(tmp_path / "v")]) == 1
    assert "npm ci" in capsys.readouterr().err


def test_wrong_version_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = load()
    nm = fake_node_modules(tmp_path, "1.0.0")
    assert module.main(["--node-modules", str(nm), "--target", str(tmp_path / "v")]) == 1
    assert "1.0.0" in capsys.readouterr().err
