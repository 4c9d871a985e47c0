"""The older mcp 1.x Python SDK (its own venv, made by ./dev.sh) against the real app's /mcp."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pbfm_tooling.local_stack import LocalStack
from tests.functional.test_api_contract import PRODUCT_MCP_TOOLS

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-mcp1" / "bin" / "python"
DRIVER = Path(__file__).with_name("mcp_v1") / "drive.py"


def test_mcp_1x_client_initializes_lists_and_calls(stack: LocalStack, session_id: str) -> None:
    assert PYTHON.exists(), "./dev.sh creates .venv-mcp1 with mcp 1.x"
    done = subprocess.run([str(PYTHON), str(DRIVER), stack.mcp_url, session_id],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["server"] == "pb-fm-webpage"
    assert seen["protocol"] in {"2025-03-26", "2025-06-18", "2025-11-25"}
    assert set(seen["tools"]) >= PRODUCT_MCP_TOOLS
    assert seen["created"]["session_id"] == session_id
    assert seen["failed_is_error"] is True and "No session" in seen["failed_text"]
    # Bad arguments are a result the model reads (SEP-1303); the 1.x client does not raise on them.
    assert seen["invalid_is_error"] is True and seen["invalid_structured"] is None
    assert seen["invalid_text"].splitlines()[1:3] == [
        "- session_id: Input should be a valid string",
        "- source: Input should be 'auto', 'figure_markets' or 'simulated'",
    ]
    assert stack.service.store.get_session(session_id) is not None
