"""Copy the browser runtime (Pyodide and PyScript) from node_modules into the served site, with
Pyodide's standard library compiled to bytecode on the way (by Pyodide itself, under Node:
pbfm_tooling/stdlib_bytecode.py).

Run after ``npm ci``::

    python scripts/install_web_assets.py

The page never loads anything from a CDN: the server (or, in AWS, the asset bucket) serves these
files. They are copied, not committed (``web_static/vendor/`` is gitignored), and the versions found
in node_modules must be the ones ``chalice_app.static_site`` puts into the page's URLs — otherwise
the page would ask for files that are not there, so the script refuses to go on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalice_app.static_site import RUNTIME_VERSIONS  # noqa: E402
from pbfm_tooling.stdlib_bytecode import BytecodeError, Compiler, compile_in_pyodide, precompile_stdlib  # noqa: E402


@dataclass(frozen=True)
class Runtime:
    name: str  # our name, the directory under web_static/vendor/
    package: str  # the npm package
    source: str  # directory inside the package holding the files to serve
    required: tuple[str, ...]  # files the page cannot boot without


RUNTIMES = (
    Runtime(
        name="pyodide",
        package="pyodide",
        source="",
        required=(
            "pyodide.mjs",
            "pyodide.asm.mjs",
            "pyodide.asm.wasm",
            "python_stdlib.zip",
            "pyodide-lock.json",
        ),
    ),
    Runtime(name="pyscript", package="@pyscript/core", source="dist", required=("core.js", "core.css")),
)

# Served files only: maps are for debugging, the HTML consoles and typings are never loaded.
SKIP_SUFFIXES = (".map", ".d.ts", ".html", ".md")
SKIP_NAMES = frozenset({"package.json", "LICENSE", "README.md"})


class InstallError(RuntimeError):
    pass


# Beside the packages it is built from: `npm ci` (a new runtime) starts it afresh.
BYTECODE_CACHE = Path(".cache") / "pbfm-stdlib-bytecode"


def installed_version(node_modules: Path, package: str) -> str:
    manifest = node_modules / package / "package.json"
    if not manifest.is_file():
        raise InstallError(
            f"{manifest} not found: run `npm ci` in {ROOT} first (the runtime comes from package-lock.json)."
        )
    return str(json.loads(manifest.read_text())["version"])


def install(node_modules: Path, target: Path, compiler: Compiler = compile_in_pyodide) -> list[Path]:
    """Copy every runtime into ``target/<name>/``, Pyodide's standard library compiled to bytecode
    (pbfm_tooling/stdlib_bytecode.py); returns the copied files."""
    copied: list[Path] = []
    for runtime in RUNTIMES:
        version = installed_version(node_modules, runtime.package)
        wanted = RUNTIME_VERSIONS[runtime.name]
        if version != wanted:
            raise InstallError(
                f"node_modules has {runtime.package}@{version} but the page is built for {wanted} "
                f"(chalice_app/static_site.py RUNTIME_VERSIONS); run `npm ci` or update both pins."
            )
        source = node_modules / runtime.package / runtime.source
        missing = [name for name in runtime.required if not (source / name).is_file()]
        if missing:
            raise InstallError(f"{runtime.package}@{version} lacks {missing}: reinstall with `npm ci`.")
        destination = target / runtime.name
        # Start clean so files of an older version never linger and get served.
        if destination.exists():
            shutil.rmtree(destination)
        destination.mkdir(parents=True)
        for path in sorted(source.iterdir()):
            if not path.is_file() or path.name in SKIP_NAMES or path.name.endswith(SKIP_SUFFIXES):
                continue
            shutil.copy2(path, destination / path.name)
            copied.append(destination / path.name)
        (destination / "VERSION").write_text(version + "\n")
    try:
        precompile_stdlib(target / "pyodide", node_modules / BYTECODE_CACHE, compiler=compiler)
    except BytecodeError as exc:
        raise InstallError(str(exc)) from exc
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", type=Path, default=ROOT / "node_modules")
    parser.add_argument("--target", type=Path, default=ROOT / "web_static" / "vendor")
    args = parser.parse_args(argv)
    try:
        copied = install(args.node_modules, args.target)
    except InstallError as exc:
        print(f"install_web_assets: {exc}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in copied)
    print(f"installed {len(copied)} files ({size / 1e6:.1f} MB) into {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
