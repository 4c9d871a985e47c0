"""docs/ARCHITECTURE.md maps every module of the runtime, the page and the tooling."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chalice_app", "web_py", "pbfm_tooling", "bench")


def test_every_module_is_in_the_map() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`((?:chalice_app|web_py|pbfm_tooling|bench)/\w+\.py)`", text))
    modules = {f"{p}/{m.name}" for p in PACKAGES for m in (ROOT / p).glob("*.py") if m.name != "__init__.py"}
    assert sorted(modules - named) == []
    assert sorted(named - modules) == []  # nor modules that are gone
