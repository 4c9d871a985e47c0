"""Pyodide's standard library as bytecode, compiled once at install time instead of in every page.

The npm package ships ``python_stdlib.zip`` with sources only, and nothing in a page can keep
bytecode between loads: each boot compiled the ~150 modules Pyodide and the page import (asyncio,
typing, inspect, ...) again, in WebAssembly. Measured on this machine, one boot of Pyodide in
Chromium took 3.4 core-seconds with sources and 1.3 with bytecode (2.7 → 0.9 s to a running
interpreter); under Node 1.9 → 0.7 s.

The bytecode is made by the very interpreter that will load it (Pyodide under Node), so its
format always matches the runtime, and replaces the sources in the zip (4.5 MB instead of 2.5;
the runtime URLs are cached as immutable, so a browser fetches it once). Tracebacks keep each
stdlib frame's file and line, not its source text, as Pyodide's own builds used to. A module
that does not compile keeps its source. The result is cached by the hash of the zip and of this
recipe: a reinstall of the same runtime compiles nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

STDLIB_ZIP = "python_stdlib.zip"

# Runs inside Pyodide. Paths are in Pyodide's own file system; the zip's entries keep their order.
_COMPILE = """
import compileall, py_compile, sys, zipfile
from pathlib import Path

# Where the runtime mounts the zip: compiled code names its files there, as sources would.
mounted = next(p for p in sys.path if p.endswith(".zip"))
source = zipfile.ZipFile("/tmp/stdlib.zip")
source.extractall("/tmp/stdlib")
compileall.compile_dir("/tmp/stdlib", ddir=mounted, legacy=True, quiet=2,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
with zipfile.ZipFile("/tmp/compiled.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
    for entry in source.infolist():
        compiled = Path("/tmp/stdlib", entry.filename + "c")
        if entry.filename.endswith(".py") and compiled.is_file():
            out.write(compiled, entry.filename + "c")
        else:
            out.writestr(entry, source.read(entry))
"""

_NODE_DRIVER = """
import fs from "node:fs";
import { pathToFileURL } from "node:url";
const job = %(job)s;
const { loadPyodide } = await import(pathToFileURL(job.pyodide + "/pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: job.pyodide + "/", stdLibURL: job.source });
pyodide.FS.writeFile("/tmp/stdlib.zip", fs.readFileSync(job.source));
pyodide.runPython(job.code);
fs.writeFileSync(job.output, pyodide.FS.readFile("/tmp/compiled.zip"));
"""

Compiler = Callable[[Path, Path, Path], None]


class BytecodeError(RuntimeError):
    pass


def compile_in_pyodide(pyodide_dir: Path, source: Path, output: Path) -> None:
    """Compile ``source`` (a stdlib zip) with the Pyodide in ``pyodide_dir`` into ``output``."""
    job = {"pyodide": str(pyodide_dir.resolve()), "source": str(source.resolve()), "output": str(output.resolve()),
           "code": _COMPILE}
    try:
        done = subprocess.run(["node", "--input-type=module", "-e", _NODE_DRIVER % {"job": json.dumps(job)}],
                              capture_output=True, text=True, timeout=300, check=False)
    except FileNotFoundError as exc:
        raise BytecodeError("node not found: it compiles Pyodide's standard library (install Node)") from exc
    if done.returncode != 0:
        raise BytecodeError(f"compiling Pyodide's standard library failed:\n{done.stderr[-3000:]}")


def recipe_key(source: Path) -> str:
    digest = hashlib.sha256(source.read_bytes())
    digest.update((_COMPILE + _NODE_DRIVER).encode())
    return digest.hexdigest()[:20]


def precompile_stdlib(pyodide_dir: Path, cache_dir: Path, *, compiler: Compiler = compile_in_pyodide) -> bool:
    """Replace ``pyodide_dir/python_stdlib.zip`` (as copied from npm) by its bytecode build.

    Returns whether it compiled; False means the cache already held this build, or the zip is one
    (it holds no source: compiling it again would only key a second build on the first).
    """
    source = pyodide_dir / STDLIB_ZIP
    if _is_built(source):
        return False
    cached = cache_dir / f"python_stdlib-{recipe_key(source)}.zip"
    compiled = not cached.is_file()
    if compiled:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Per process: two installs at once each write their own, and either whole one may win.
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
        try:
            compiler(pyodide_dir, source, partial)
            _check(source, partial)
            partial.replace(cached)  # only a whole, checked build is ever reused
        finally:
            partial.unlink(missing_ok=True)
    shutil.copyfile(cached, source)
    return compiled


def _is_built(source: Path) -> bool:
    with zipfile.ZipFile(source) as stdlib:
        names = stdlib.namelist()
    return any(name.endswith(".pyc") for name in names) and not any(name.endswith(".py") for name in names)


def _check(source: Path, built: Path) -> None:
    """Every file of the source zip is in the build, as bytecode or (if it did not compile) as itself."""
    try:
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(built) as result:
            have = set(result.namelist())
            missing = [name for name in original.namelist() if name not in have and name + "c" not in have]
            compiled = sum(1 for name in have if name.endswith(".pyc"))
    except (OSError, zipfile.BadZipFile) as exc:
        raise BytecodeError(f"the compiled standard library is not a readable zip: {exc}") from exc
    if missing or not compiled:
        raise BytecodeError(f"the compiled standard library lacks {missing[:5]} ({compiled} modules compiled)")
