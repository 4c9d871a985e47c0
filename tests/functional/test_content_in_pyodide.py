"""The page really runs Pyodide (CPython 3.14 in wasm), not the server's CPython: its parser must
give the same verdicts there. Loads our own Pyodide under Node, puts the page's modules (the
pyscript.toml table) into its file system and parses the parity test's chosen inputs.
"""

from __future__ import annotations

import json
import subprocess
import tomllib

from chalice_app.static_site import PYSCRIPT_TOML, ROOT, VENDOR
from tests.functional.test_content_parity import CASES, page

RUN_IN_PYODIDE = """
import { loadPyodide } from "%(pyodide)s/pyodide.mjs";
import fs from "fs";
const request = JSON.parse(fs.readFileSync(0, "utf8"));
const pyodide = await loadPyodide({ indexURL: "%(pyodide)s/" });
pyodide.FS.mkdir("/web_py");
for (const [target, source] of Object.entries(request.files)) {
  pyodide.FS.writeFile(target, fs.readFileSync(source));
}
pyodide.globals.set("inputs", request.inputs);
const verdicts = pyodide.runPython(`
import json, sys
sys.path.insert(0, "/")
from web_py.content import Layout
from web_py.messages import MessageError

def verdict(text):
    try:
        Layout.from_dict(json.loads(text))
    except MessageError:
        return "refused"
    return "accepted"

json.dumps({"version": sys.version_info[:2], "verdicts": [verdict(text) for text in inputs]})
`);
process.stdout.write(verdicts);
"""


def test_the_page_parser_gives_the_same_verdicts_in_pyodide() -> None:
    pyodide = VENDOR / "pyodide"
    # ./dev.sh installs the runtime before any test runs: its absence is a failure, never a skip.
    assert (pyodide / "pyodide.asm.wasm").is_file(), "runtime not installed (scripts/install_web_assets.py)"
    files = {target: str(ROOT / source) for target, source in tomllib.loads(PYSCRIPT_TOML.read_text())["files"].items()}
    inputs = [json.dumps(content) for _, content, _ in CASES]
    done = subprocess.run(["node", "--input-type=module", "-e", RUN_IN_PYODIDE % {"pyodide": pyodide}],
                          input=json.dumps({"files": files, "inputs": inputs}), capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["version"] >= [3, 14]  # really the page's interpreter, not the server's
    expected = [page(content) for _, content, _ in CASES]
    names = [name for name, _, _ in CASES]
    assert dict(zip(names, answer["verdicts"], strict=True)) == dict(zip(names, expected, strict=True))
    assert {"accepted", "refused"} <= set(expected)
