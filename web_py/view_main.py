"""Entry point of the session view inside an AI chat; PyScript runs this file (see web_static/view.html).

``window.pbfmView`` is the MCP Apps side of the view (web_static/view_bridge.js): it hands over
the tool result the host sent and renews the view's token through the host when asked.
"""

import asyncio
import logging
from typing import Any

from js import document, window

from web_py.browser_io import ConsoleHandler
from web_py.view_io import start_view

handler = ConsoleHandler()
handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
logging.basicConfig(level=logging.INFO, handlers=[handler])
log = logging.getLogger("web_py.view_main")


def finished(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the view stopped", exc_info=task.exception())
        root.dataset.failed = "true"


root = document.getElementById("app")
root.dataset.python = "ready"
# Kept in a module global: the event loop holds tasks only weakly.
session_task = asyncio.ensure_future(start_view(root, window.pbfmView))
session_task.add_done_callback(finished)
