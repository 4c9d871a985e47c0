"""web_py/ runs unchanged in Pyodide and on the server: standard library only, and no I/O of its own.

Only the entry points (the page's and the chat view's) and their browser adapters may reach into the
browser runtime.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

WEB_PY = Path(__file__).resolve().parents[2] / "web_py"
BROWSER_MODULES = frozenset({"main.py", "browser_io.py", "view_main.py", "view_io.py"})
BROWSER_PACKAGES = frozenset({"js", "pyodide", "pyscript"})
# Standard library, but I/O: the caller injects transport, the shared code only decides.
IO_MODULES = frozenset(
    {"socket", "ssl", "subprocess", "urllib", "http", "shutil", "sqlite3", "ftplib", "smtplib"}
)
MODULES = sorted(WEB_PY.glob("*.py"))


def imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays inside web_py.
            roots.add("web_py" if node.level else (node.module or "").split(".")[0])
    return roots


def violations(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    allowed = set(sys.stdlib_module_names) | {"web_py"}
    if filename in BROWSER_MODULES:
        allowed |= BROWSER_PACKAGES
    else:
        allowed -= IO_MODULES
    problems = [f"imports {root}" for root in sorted(imported_roots(tree) - allowed)]
    if filename not in BROWSER_MODULES:
        problems += [
            f"calls open() on line {node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
        ]
    return problems


def test_web_py_has_modules() -> None:
    assert {"messages.py", "content.py", "page_state.py", "queue_processor.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_is_standard_library_only(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize("path", [p for p in MODULES if p.name not in BROWSER_MODULES | {"__init__.py"}],
                         ids=lambda p: p.name)
def test_module_postpones_annotations(path: Path) -> None:
    # Pyodide runs 3.14 and the server 3.11: postponed annotations keep both reading the same hints.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    futures = {a.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"
               for a in n.names}
    assert "annotations" in futures


@pytest.mark.parametrize(
    ("source", "filename", "expected"),
    [
        ("import boto3", "content.py", ["imports boto3"]),
        ("from pydantic import BaseModel", "content.py", ["imports pydantic"]),
        ("import js", "page_state.py", ["imports js"]),
        ("from pyodide.http import pyfetch", "queue_processor.py", ["imports pyodide"]),
        ("import urllib.request", "content.py", ["imports urllib"]),
        ("x = open('f')", "content.py", ["calls open() on line 1"]),
        ("import js\nfrom pyodide.http import pyfetch\nimport pyscript", "main.py", []),
        ("from pyodide.ffi import create_proxy", "browser_io.py", []),
        ("import boto3", "browser_io.py", ["imports boto3"]),
        ("import json, re\nfrom dataclasses import dataclass\nfrom . import messages", "x.py", []),
        ("from web_py.messages import Envelope", "x.py", []),
    ],
)
def test_the_checker_itself(source: str, filename: str, expected: list[str]) -> None:
    assert violations(source, filename) == expected
