"""The static routes through Chalice's test client: types, whitelists, caching, CSP, asset base."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice import Chalice
from chalice.test import Client

from chalice_app.settings import Settings
from chalice_app.static_site import (
    ENTRY_SCRIPT,
    PAGE_MODULES,
    PYSCRIPT_TOML,
    ROOT,
    RUNTIME_VERSIONS,
    VENDOR,
    VIEW_ENTRY_SCRIPT,
    WEB_PY,
    _mapped_modules,
    content_security_policy,
    mount_static,
)

PYODIDE = f"/vendor/pyodide/{RUNTIME_VERSIONS['pyodide']}"
PYSCRIPT = f"/vendor/pyscript/{RUNTIME_VERSIONS['pyscript']}"


@pytest.fixture
def require_runtime() -> None:
    # ./dev.sh installs the runtime before any test runs: its absence is a failure, never a skip.
    assert (VENDOR / "pyodide" / "pyodide.asm.wasm").is_file(), (
        "runtime not installed (npm ci && python scripts/install_web_assets.py)"
    )


runtime_installed = pytest.mark.usefixtures("require_runtime")


def make_client(settings: Settings) -> Client:
    app = Chalice("static-test")
    mount_static(app, lambda: settings)
    return Client(app)


@pytest.fixture
def client() -> Iterator[Client]:
    with make_client(Settings(aws_endpoint_url="http://127.0.0.1:5000")) as c:
        yield c


def get(client: Client, path: str, **headers: str) -> Any:
    return client.http.get(path, headers={"Accept": "*/*", **headers})


def test_session_page_has_hooks_csp_and_our_runtime(client: Client) -> None:
    response = get(client, "/session/demo-1")
    assert response.status_code == 200
    body = response.body.decode()
    assert 'data-session-id="demo-1"' in body
    assert f'src="{PYSCRIPT}/core.js"' in body
    assert 'config="/pyscript.toml" src="/web_py/main.py"' in body
    # No inline script: every <script> has a src.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", body))
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "connect-src 'self' http://127.0.0.1:5000" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("bad", ["a" * 25, "bad%20id", "%3Cscript%3E"])
def test_invalid_session_id_is_a_404_page(client: Client, bad: str) -> None:
    response = get(client, f"/session/{bad}")
    assert response.status_code == 404
    assert b"<script>" not in response.body


def test_landing_explains_how_to_join(client: Client) -> None:
    response = get(client, "/")
    assert response.status_code == 200
    assert b"/session/" in response.body and b"/mcp" in response.body


def test_pyscript_toml_is_served_and_points_at_our_pyodide(client: Client) -> None:
    response = get(client, "/pyscript.toml")
    config = tomllib.loads(response.body.decode())
    assert config["interpreter"] == f"{PYODIDE}/pyodide.mjs"
    assert config["files"] == tomllib.loads(PYSCRIPT_TOML.read_text())["files"]


def page_imports() -> set[str]:
    """The web_py files the page and the chat view need: the entry scripts' web_py imports, followed
    transitively."""
    needed = {"__init__.py"}
    pending = [ENTRY_SCRIPT, VIEW_ENTRY_SCRIPT]
    while pending:
        name = pending.pop()
        tree = ast.parse((WEB_PY / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("web_py."):
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names if alias.name.startswith("web_py.")]
            for module in modules:
                file = module.split(".")[1] + ".py"
                if file not in needed:
                    needed.add(file)
                    pending.append(file)
    return needed


def test_the_one_module_list_is_what_the_page_imports() -> None:
    mapped = {source.removeprefix("/web_py/") for source in tomllib.loads(PYSCRIPT_TOML.read_text())["files"]}
    assert "content.py" in page_imports() and "rules.py" in page_imports()  # the walk itself works
    assert mapped == page_imports()
    # What static_site serves is read from that same table, plus the entry scripts.
    assert mapped | {ENTRY_SCRIPT, VIEW_ENTRY_SCRIPT} == PAGE_MODULES
    page = (ROOT / "web_static" / "page.html").read_text()
    assert f'src="{{{{base}}}}/web_py/{ENTRY_SCRIPT}"' in page


def test_a_malformed_files_table_is_refused() -> None:
    with pytest.raises(ValueError, match="expected /web_py/<name>"):
        _mapped_modules('[files]\n"/web_py/a.py" = "./elsewhere/a.py"\n')
    with pytest.raises(ValueError, match="expected /web_py/<name>"):
        _mapped_modules('[files]\n"/etc/passwd" = "./web_py/passwd"\n')


def test_web_py_is_whitelisted(client: Client) -> None:
    ok = get(client, "/web_py/messages.py")
    assert ok.status_code == 200
    assert ok.headers["Content-Type"].startswith("text/x-python")
    assert ok.body == (ROOT / "web_py" / "messages.py").read_bytes()
    for name in ("secret.py", "..%2Fchalice_app%2Fsettings.py", "__pycache__"):
        assert get(client, f"/web_py/{name}").status_code == 404
    assert get(client, "/static/page.html").status_code == 404


def test_etag_revalidation(client: Client) -> None:
    first = get(client, "/static/page.css")
    assert first.headers["Cache-Control"] == "no-cache"
    again = get(client, "/static/page.css", **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.body == b""


@runtime_installed
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (f"{PYODIDE}/pyodide.asm.wasm", "application/wasm"),
        (f"{PYODIDE}/pyodide.mjs", "text/javascript; charset=utf-8"),
        (f"{PYODIDE}/python_stdlib.zip", "application/zip"),
        (f"{PYODIDE}/pyodide-lock.json", "application/json"),
        (f"{PYSCRIPT}/core.js", "text/javascript; charset=utf-8"),
        (f"{PYSCRIPT}/core.css", "text/css; charset=utf-8"),
    ],
)
def test_runtime_is_served_whole_with_types_and_immutable(client: Client, path: str, content_type: str) -> None:
    response = get(client, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    runtime, name = path.split("/")[2], path.rsplit("/", 1)[1]
    assert response.body == (VENDOR / runtime / name).read_bytes()
    # A binary 304 must not trip Chalice's base64 encoding of binary bodies.
    again = get(client, path, **{"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_runtime_other_versions_and_odd_names_are_404(client: Client) -> None:
    assert get(client, "/vendor/pyodide/0.0.1/pyodide.mjs").status_code == 404
    assert get(client, f"{PYODIDE}/..%2F..%2Fpage.html").status_code == 404
    assert get(client, f"{PYODIDE}/.hidden").status_code == 404


def test_asset_base_url_moves_the_runtime_to_s3() -> None:
    base = "https://assets.example.com/pbfm"
    settings = Settings(asset_base_url=base + "/")
    with make_client(settings) as c:
        page = get(c, "/session/demo").body.decode()
        toml = get(c, "/pyscript.toml").body.decode()
    assert f'src="{base}/pyscript/{RUNTIME_VERSIONS["pyscript"]}/core.js"' in page
    assert f'interpreter = "{base}/pyodide/{RUNTIME_VERSIONS["pyodide"]}/pyodide.mjs"' in toml
    csp = content_security_policy(settings)
    assert "https://assets.example.com" in csp.split("script-src")[1].split(";")[0]
    # Without a local endpoint the page fetches documents from the real bucket.
    assert "https://pb-fm-webpage-mvp-assets.s3.us-west-1.amazonaws.com" in csp


def test_runtime_versions_match_package_json() -> None:
    import json

    pins = json.loads(Path(ROOT / "package.json").read_text())["dependencies"]
    assert pins["pyodide"] == RUNTIME_VERSIONS["pyodide"]
    assert pins["@pyscript/core"] == RUNTIME_VERSIONS["pyscript"]
