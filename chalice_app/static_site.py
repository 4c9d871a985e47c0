"""The page, its Python and the self-hosted browser runtime, served by the Chalice app.

Routes (all GET): ``/`` (how to start or join a session), ``/session/{session_id}`` (the page),
``/pyscript.toml``, ``/web_py/{name}`` (the page's Python, whitelisted), ``/static/{name}`` and the
runtime under ``/vendor/pyodide/{version}/{name}`` and ``/vendor/pyscript/{version}/{name}``.

The runtime URLs carry the npm version so they can be cached as immutable: an upgrade changes the
URL. In AWS the runtime is too large for API Gateway (6 MB cap, the wasm is 9.6 MB) and lives in
S3 behind ``settings.asset_base_url``; the page and ``pyscript.toml`` then point there, with the
same ``pyodide/{version}/`` and ``pyscript/{version}/`` layout below that base.
"""

from __future__ import annotations

import hashlib
import html
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from chalice import Chalice, Response

from chalice_app import view_cors
from chalice_app.settings import Settings
from web_py.messages import is_valid_session_id

# Must match package.json; scripts/install_web_assets.py refuses to install anything else.
RUNTIME_VERSIONS = {"pyodide": "314.0.7", "pyscript": "0.7.31"}

ROOT = Path(__file__).resolve().parent.parent
WEB_STATIC = ROOT / "web_static"
VENDOR = WEB_STATIC / "vendor"
WEB_PY = ROOT / "web_py"
PYSCRIPT_TOML = ROOT / "pyscript.toml"

# The page's entry script (web_static/page.html loads it with the config below), and the entry
# script of the session view inside a chat (web_static/view.html, see mcp_app_view).
ENTRY_SCRIPT = "main.py"
VIEW_ENTRY_SCRIPT = "view_main.py"


def _mapped_modules(config_text: str) -> frozenset[str]:
    """The web_py files pyscript.toml maps into Pyodide's file system: the one list of page modules."""
    names = set()
    for source, target in tomllib.loads(config_text)["files"].items():
        name = source.removeprefix("/web_py/")
        if source != f"/web_py/{name}" or target != f"./web_py/{name}" or "/" in name:
            raise ValueError(f"pyscript.toml maps {source!r} to {target!r}; expected /web_py/<name> = ./web_py/<name>")
        names.add(name)
    return frozenset(names)


# The page's Python: exactly the modules pyscript.toml maps, plus the entry script. Nothing else
# under web_py/ (or elsewhere) is reachable through /web_py/.
PAGE_MODULES = _mapped_modules(PYSCRIPT_TOML.read_text(encoding="utf-8")) | {ENTRY_SCRIPT, VIEW_ENTRY_SCRIPT}
STATIC_FILES = frozenset({"page.css", "boot.js", "favicon.svg", "view_bridge.js"})

CONTENT_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".zip": "application/zip",
    ".css": "text/css; charset=utf-8",
    ".py": "text/x-python; charset=utf-8",
    ".toml": "application/toml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".whl": "application/zip",
    ".tar": "application/x-tar",
}
# Served as raw bytes: Chalice base64-encodes these for API Gateway and decodes them locally.
BINARY_TYPES = ("application/wasm", "application/zip", "application/x-tar", "application/octet-stream")

IMMUTABLE = "public, max-age=31536000, immutable"
# Our own files change with every deploy under the same URL: always revalidate (cheap, ETag).
REVALIDATE = "no-cache"

_RUNTIME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class _File:
    body: bytes
    content_type: str
    etag: str


@lru_cache(maxsize=128)
def _load(path: Path, mtime_ns: int) -> _File:
    # Keyed on mtime so an edited file is re-read; the 9.6 MB wasm is hashed once, not per request.
    body = path.read_bytes()
    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    return _File(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _read(path: Path) -> _File | None:
    try:
        return _load(path, path.stat().st_mtime_ns)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def asset_base(settings: Settings, base: str = "") -> str:
    """Where the page loads the runtime from: our own /vendor, or the configured base (S3)."""
    return settings.asset_base_url.rstrip("/") if settings.asset_base_url else f"{base}/vendor"


def runtime_url(settings: Settings, runtime: str, name: str, base: str = "") -> str:
    return f"{asset_base(settings, base)}/{runtime}/{RUNTIME_VERSIONS[runtime]}/{name}"


def s3_origins(settings: Settings) -> list[str]:
    """Origins the page fetches documents from by presigned URL (CSP connect-src)."""
    if settings.browser_endpoint_url:
        origin = _origin(settings.browser_endpoint_url)
        return [origin] if origin else []
    bucket, region = settings.bucket_name, settings.region
    return [
        f"https://{bucket}.s3.{region}.amazonaws.com",
        f"https://{bucket}.s3.amazonaws.com",
        f"https://s3.{region}.amazonaws.com",
    ]


def sqs_origins(settings: Settings) -> list[str]:
    """Origins the page long-polls its own queues at by presigned receive (CSP connect-src)."""
    if settings.browser_endpoint_url:
        origin = _origin(settings.browser_endpoint_url)
        return [origin] if origin else []
    return [f"https://sqs.{settings.region}.amazonaws.com"]


def poll_mode(query: Mapping[str, str] | None) -> str:
    """``?poll=server``: long-poll through our server, for networks that block the SQS host."""
    return "server" if (query or {}).get("poll") == "server" else "direct"


def content_security_policy(settings: Settings) -> str:
    """No inline script: only files from our own origin (or the asset base) run.

    'unsafe-inline' stays off for scripts, which is what stops injected markup (an ``<img
    onerror>`` or ``<script>`` that slipped past escaping) from running. Two allowances the
    runtime cannot do without, both measured in Chromium:
    - 'wasm-unsafe-eval': Pyodide compiles its WebAssembly at run time.
    - 'unsafe-eval': PyScript 0.7.31 builds its hook chain with ``Function(...)`` on every boot
      (core.js, ``jo``), so without it the page stops with an EvalError. Our own code never
      evaluates strings; drop this when PyScript stops needing it.
    PyScript injects a <style> element, hence 'unsafe-inline' for styles (styles run no code).
    """
    assets = _origin(settings.asset_base_url) if settings.asset_base_url else None
    extra = [assets] if assets else []
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'", "'unsafe-eval'", *extra],
        "connect-src": ["'self'", *extra, *dict.fromkeys([*s3_origins(settings), *sqs_origins(settings)])],
        "style-src": ["'self'", "'unsafe-inline'", *extra],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def _security_headers() -> dict[str, str]:
    return {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _html(body: str, settings: Settings, status: int = 200) -> Response:
    headers: dict[str, str | list[str]] = {
        **_security_headers(),
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": content_security_policy(settings),
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
    return Response(body=body, status_code=status, headers=headers)


def _file_response(file: _File | None, cache_control: str, if_none_match: str | None) -> Response:
    if file is None:
        not_found: dict[str, str | list[str]] = {**_security_headers(), "Content-Type": "text/plain; charset=utf-8"}
        return Response(body="Not found\n", status_code=404, headers=not_found)
    headers: dict[str, str | list[str]] = {
        **_security_headers(),
        "Content-Type": file.content_type,
        "Cache-Control": cache_control,
        "ETag": file.etag,
    }
    binary = file.content_type.split(";")[0] in BINARY_TYPES
    if if_none_match is not None and file.etag in [t.strip() for t in if_none_match.split(",")]:
        # Chalice base64-encodes binary bodies and insists on bytes for them, even empty ones.
        return Response(body=b"" if binary else "", status_code=304, headers=headers)
    # Text goes out as str: a bytes body with a non-binary type would not survive API Gateway.
    return Response(body=file.body if binary else file.body.decode("utf-8"), status_code=200, headers=headers)


def render_template(name: str, values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders with HTML-escaped values (attributes and text alike)."""
    text = (WEB_STATIC / name).read_text(encoding="utf-8")

    def fill(match: re.Match[str]) -> str:
        return html.escape(values[match.group(1)], quote=True)

    return re.sub(r"\{\{([a-z_]+)\}\}", fill, text)


def pyscript_config(settings: Settings, base: str = "") -> str:
    """pyscript.toml as committed, with the interpreter moved to the asset base when one is set."""
    text = PYSCRIPT_TOML.read_text(encoding="utf-8")
    if settings.asset_base_url:
        return text.replace('"/vendor/', f'"{asset_base(settings)}/')
    return text.replace('"/vendor/', f'"{base}/vendor/')


def absolute_pyscript_config(settings: Settings, base_url: str) -> dict[str, object]:
    """pyscript.toml with every URL absolute on ``base_url``, for a document served from elsewhere.

    The session view runs at a chat host's sandbox origin, where "/web_py/..." would name the
    host's files: the same [files] table (the one list), its sources made absolute on our base.
    """
    text = PYSCRIPT_TOML.read_text(encoding="utf-8")
    _mapped_modules(text)  # the same checks as the page's table
    config = tomllib.loads(text)
    files = {f"{base_url}{source}": target for source, target in config["files"].items()}
    return {**config, "interpreter": runtime_url(settings, "pyodide", "pyodide.mjs", base_url), "files": files}


def base_path(request_path: str, route_path: str) -> str:
    """The prefix in front of our routes in the browser's URL ("" locally, "/api" on API Gateway).

    API Gateway's default URL puts the stage name before every route; a custom domain does not.
    The page's links and calls are built on this prefix so both work.
    """
    if route_path and request_path.endswith(route_path):
        prefix = request_path[: len(request_path) - len(route_path)]
        if prefix == "" or re.fullmatch(r"(/[A-Za-z0-9_.-]+)+", prefix):
            return prefix
    return ""


def mount_static(app: Chalice, settings_provider: Callable[[], Settings]) -> None:
    """Register the page's GET routes on ``app``."""
    for binary_type in BINARY_TYPES:
        if binary_type not in app.api.binary_types:
            app.api.binary_types.append(binary_type)

    def request_base(route_path: str) -> str:
        request = app.current_request
        context = {} if request is None else (request.context or {})
        return base_path(str(context.get("path") or route_path), route_path)

    def if_none_match() -> str | None:
        request = app.current_request
        return None if request is None else request.headers.get("if-none-match")

    def for_views(response: Response) -> Response:
        # The session view in a chat host's sandbox loads these cross-origin (CORS-mode requests).
        request = app.current_request
        origin = None if request is None else view_cors.view_origin(request.headers, settings_provider())
        if origin is not None:
            response.headers.update(view_cors.cors_headers(origin))
        return response

    @app.route("/", methods=["GET"])
    def landing() -> Response:
        return _html(render_template("landing.html", {"base": request_base("/")}), settings_provider())

    @app.route("/session/{session_id}", methods=["GET"])
    def session_page(session_id: str) -> Response:
        settings = settings_provider()
        if not is_valid_session_id(session_id):
            base = request_base(f"/session/{session_id}")
            return _html(render_template("not_found.html", {"session_id": session_id, "base": base}), settings, 404)
        base = request_base(f"/session/{session_id}")
        values = {
            "base": base,
            "session_id": session_id,
            "pyscript_core_js": runtime_url(settings, "pyscript", "core.js", base),
            "pyscript_core_css": runtime_url(settings, "pyscript", "core.css", base),
            "heartbeat_interval_s": str(settings.heartbeat_interval_s),
            "poll": poll_mode(app.current_request.query_params if app.current_request else None),
        }
        return _html(render_template("page.html", values), settings)

    @app.route("/pyscript.toml", methods=["GET"])
    def pyscript_toml() -> Response:
        body = pyscript_config(settings_provider(), request_base("/pyscript.toml")).encode("utf-8")
        file = _File(body, CONTENT_TYPES[".toml"], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        return _file_response(file, REVALIDATE, if_none_match())

    @app.route("/web_py/{name}", methods=["GET"])
    def web_py_module(name: str) -> Response:
        file = _read(WEB_PY / name) if name in PAGE_MODULES else None
        return for_views(_file_response(file, REVALIDATE, if_none_match()))

    @app.route("/static/{name}", methods=["GET"])
    def static_file(name: str) -> Response:
        file = _read(WEB_STATIC / name) if name in STATIC_FILES else None
        return for_views(_file_response(file, REVALIDATE, if_none_match()))

    def runtime_file(runtime: str, version: str, name: str) -> Response:
        ok = version == RUNTIME_VERSIONS[runtime] and _RUNTIME_NAME.match(name) is not None
        file = _read(VENDOR / runtime / name) if ok else None
        return for_views(_file_response(file, IMMUTABLE, if_none_match()))

    @app.route("/vendor/pyodide/{version}/{name}", methods=["GET"])
    def pyodide_file(version: str, name: str) -> Response:
        return runtime_file("pyodide", version, name)

    @app.route("/vendor/pyscript/{version}/{name}", methods=["GET"])
    def pyscript_file(version: str, name: str) -> Response:
        return runtime_file("pyscript", version, name)
