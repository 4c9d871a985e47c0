"""scripts/install_web_assets.py: copies the pinned runtime, refuses anything else, and serves
Pyodide's standard library as bytecode, compiled once per runtime.

The compiler here is a stand-in that writes what a compile would (``.pyc`` entries); the real one,
Pyodide under Node, is tested on the installed runtime in tests/functional/test_stdlib_bytecode.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from pbfm_tooling.stdlib_bytecode import BytecodeError

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
        "pyodide-lock.json",
        "pyodide.mjs.map",
        "console.html",
    ):
        (nm / "pyodide" / name).write_text("x")
    write_stdlib(nm / "pyodide" / "python_stdlib.zip", {"json/__init__.py": "x = 1\n", "README.txt": "hi"})
    dist = nm / "@pyscript" / "core" / "dist"
    dist.mkdir(parents=True)
    (nm / "@pyscript" / "core" / "package.json").write_text(json.dumps({"version": RUNTIME_VERSIONS["pyscript"]}))
    for name in ("core.js", "core.css", "core-abc.js"):
        (dist / name).write_text("x")
    return nm


def write_stdlib(path: Path, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as out:
        for name, text in files.items():
            out.writestr(name, text)


class StandInCompiler:
    """Writes each ``.py`` as ``.pyc`` (its text marked), except the names in ``lose``."""

    def __init__(self, lose: tuple[str, ...] = ()) -> None:
        self.lose = lose
        self.runs: list[Path] = []

    def __call__(self, pyodide_dir: Path, source: Path, output: Path) -> None:
        self.runs.append(pyodide_dir)
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(output, "w") as out:
            for name in original.namelist():
                if name in self.lose:
                    continue
                text = original.read(name)
                if name.endswith(".py"):
                    out.writestr(name + "c", b"compiled:" + text)
                else:
                    out.writestr(name, text)


def served_stdlib(target: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(target / "pyodide" / "python_stdlib.zip") as served:
        return {name: served.read(name) for name in served.namelist()}


def test_copies_served_files_only(tmp_path: Path) -> None:
    from chalice_app.static_site import RUNTIME_VERSIONS

    module = load()
    nm = fake_node_modules(tmp_path, RUNTIME_VERSIONS["pyodide"])
    target = tmp_path / "vendor"
    (target / "pyodide").mkdir(parents=True)
    (target / "pyodide" / "stale.js").write_text("old")
    compiler = StandInCompiler()
    module.install(nm, target, compiler=compiler)
    assert compiler.runs == [target / "pyodide"]
    assert served_stdlib(target) == {"json/__init__.pyc": b"compiled:x = 1\n", "README.txt": b"hi"}
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


def test_a_reinstall_of_the_same_runtime_compiles_nothing(tmp_path: Path) -> None:
    from chalice_app.static_site import RUNTIME_VERSIONS

    module = load()
    nm = fake_node_modules(tmp_path, RUNTIME_VERSIONS["pyodide"])
    target = tmp_path / "vendor"
    compiler = StandInCompiler()
    module.install(nm, target, compiler=compiler)
    module.install(nm, target, compiler=compiler)
    assert len(compiler.runs) == 1
    assert served_stdlib(target)["json/__init__.pyc"] == b"compiled:x = 1\n"
    # Another standard library (a new runtime) is compiled afresh.
    write_stdlib(nm / "pyodide" / "python_stdlib.zip", {"json/__init__.py": "x = 2\n"})
    module.install(nm, target, compiler=compiler)
    assert len(compiler.runs) == 2
    assert served_stdlib(target) == {"json/__init__.pyc": b"compiled:x = 2\n"}


def test_a_build_that_lost_a_module_is_refused_and_never_reused(tmp_path: Path) -> None:
    from chalice_app.static_site import RUNTIME_VERSIONS

    module = load()
    nm = fake_node_modules(tmp_path, RUNTIME_VERSIONS["pyodide"])
    target = tmp_path / "vendor"
    with pytest.raises(module.InstallError, match=r"json/__init__\.py"):
        module.install(nm, target, compiler=StandInCompiler(lose=("json/__init__.py",)))
    compiler = StandInCompiler()
    module.install(nm, target, compiler=compiler)
    assert len(compiler.runs) == 1 and "json/__init__.pyc" in served_stdlib(target)


def test_a_failed_compile_stops_the_install_with_its_cause(tmp_path: Path) -> None:
    from chalice_app.static_site import RUNTIME_VERSIONS

    module = load()
    nm = fake_node_modules(tmp_path, RUNTIME_VERSIONS["pyodide"])

    def failing(pyodide_dir: Path, source: Path, output: Path) -> None:
        raise BytecodeError("compiling Pyodide's standard library failed: SyntaxError")

    with pytest.raises(module.InstallError, match="SyntaxError"):
        module.install(nm, tmp_path / "v", compiler=failing)


def test_a_build_that_is_not_a_zip_is_refused_and_leaves_nothing_behind(tmp_path: Path) -> None:
    from chalice_app.static_site import RUNTIME_VERSIONS

    module = load()
    nm = fake_node_modules(tmp_path, RUNTIME_VERSIONS["pyodide"])

    def garbage(pyodide_dir: Path, source: Path, output: Path) -> None:
        output.write_bytes(b"not a zip")

    with pytest.raises(module.InstallError, match="not a readable zip"):
        module.install(nm, tmp_path / "v", compiler=garbage)
    assert list((nm / module.BYTECODE_CACHE).iterdir()) == []


def test_a_standard_library_that_is_already_bytecode_is_left_as_it_is(tmp_path: Path) -> None:
    from pbfm_tooling.stdlib_bytecode import precompile_stdlib

    pyodide = tmp_path / "pyodide"
    pyodide.mkdir()
    write_stdlib(pyodide / "python_stdlib.zip", {"json/__init__.pyc": "compiled", "README.txt": "hi"})
    compiler = StandInCompiler()
    assert precompile_stdlib(pyodide, tmp_path / "cache", compiler=compiler) is False
    assert compiler.runs == [] and not (tmp_path / "cache").exists()
    assert served_stdlib(tmp_path) == {"json/__init__.pyc": b"compiled", "README.txt": b"hi"}
