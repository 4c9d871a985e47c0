"""The session page's route on the static site alone. (That the page boots Pyodide from our own
server under our Content-Security-Policy is checked where a page boots anyway:
tests/browser/test_page_sync.py.)"""

from __future__ import annotations

import pytest

from tests.browser.harness import Browsers

pytestmark = pytest.mark.browser


def test_bad_session_id_is_a_404_page(browsers: Browsers, static_server: str) -> None:
    page = browsers.person().new_page()
    response = page.goto(f"{static_server}/session/not%20valid%3Cb%3E")
    assert response is not None and response.status == 404
    assert page.locator("b").count() == 0
