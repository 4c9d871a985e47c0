"""The standard library the page gets is bytecode that its own Pyodide loads (pbfm_tooling/stdlib_bytecode.py).

Runs the installed runtime under Node, as the compile did, and checks what a page would see.
"""

from __future__ import annotations

import json
import subprocess
import zipfile

from chalice_app.static_site import ROOT, VENDOR
from pbfm_tooling.stdlib_bytecode import STDLIB_ZIP

LOAD_AND_REPORT = """
import { loadPyodide } from "%(pyodide)s/pyodide.mjs";
const pyodide = await loadPyodide({ indexURL: "%(pyodide)s/" });
process.stdout.write(pyodide.runPython(`
import asyncio, json, sys, traceback
try:
    json.loads("{")
except ValueError as exc:
    frames = traceback.extract_tb(exc.__traceback__)
json.dumps({
    "asyncio": asyncio.__spec__.origin,
    "stdlib": next(p for p in sys.path if p.endswith(".zip")),
    "frames": [[frame.filename, frame.lineno] for frame in frames],
})
`));
"""


def test_every_module_of_the_runtime_is_served_as_bytecode() -> None:
    with zipfile.ZipFile(ROOT / "node_modules" / "pyodide" / STDLIB_ZIP) as npm:
        shipped = npm.namelist()
    with zipfile.ZipFile(VENDOR / "pyodide" / STDLIB_ZIP) as served:
        names = set(served.namelist())
    modules = [name for name in shipped if name.endswith(".py")]
    assert len(modules) > 500
    assert [name for name in modules if name + "c" not in names] == []
    assert [name for name in names if name.endswith(".py")] == []
    assert {name for name in shipped if not name.endswith(".py")} <= names  # data files stay


def test_pyodide_imports_the_bytecode_and_tracebacks_keep_file_and_line() -> None:
    pyodide = VENDOR / "pyodide"
    done = subprocess.run(["node", "--input-type=module", "-e", LOAD_AND_REPORT % {"pyodide": pyodide}],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["asyncio"] == report["stdlib"] + "/asyncio/__init__.pyc"
    decoder = [line for name, line in report["frames"] if name == report["stdlib"] + "/json/decoder.py"]
    assert decoder and all(line > 0 for line in decoder)
