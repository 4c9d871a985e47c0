"""The page boots Pyodide from our own server, offline, under our Content-Security-Policy."""

from __future__ import annotations

import pytest

from tests.browser.harness import Browsers, wait_for_python

pytestmark = pytest.mark.browser


def test_page_boots_python_from_our_server_only(browsers: Browsers, static_server: str) -> None:
    page = browsers.open(f"{static_server}/session/boot-test")
    # The plain HTML loading state is there before any Python runs.
    assert page.locator("#boot-progress").count() == 1
    seconds = wait_for_python(page)
    print(f"python ready {seconds:.1f} s after load")
    assert page.evaluate("typeof WebAssembly") == "object"
    runtime = [url for url in browsers.requests if "/vendor/pyodide/" in url]
    assert any(url.endswith("/pyodide.asm.wasm") for url in runtime), browsers.requests
    violations = [line for line in browsers.console if "Content Security Policy" in line]
    assert violations == []
    # browsers fixture: no request left 127.0.0.1.


def test_bad_session_id_is_a_404_page(browsers: Browsers, static_server: str) -> None:
    page = browsers.person().new_page()
    response = page.goto(f"{static_server}/session/not%20valid%3Cb%3E")
    assert response is not None and response.status == 404
    assert page.locator("b").count() == 0
