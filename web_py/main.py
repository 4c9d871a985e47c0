"""Entry point of the session page; PyScript runs this file (see web_static/page.html)."""

import asyncio
import logging
from typing import Any

from js import document

from web_py.browser_io import ConsoleHandler, start

handler = ConsoleHandler()
handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
logging.basicConfig(level=logging.INFO, handlers=[handler])
log = logging.getLogger("web_py.main")


def finished(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the page stopped", exc_info=task.exception())
        root.dataset.failed = "true"


root = document.getElementById("app")
root.dataset.python = "ready"
# Kept in a module global: the event loop holds tasks only weakly.
session_task = asyncio.ensure_future(start(root))
session_task.add_done_callback(finished)
