"""A port wrapper that counts calls: how tests measure the server's work per operation."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Counting:
    """Forwards every call to the wrapped port and counts it by method name."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted
