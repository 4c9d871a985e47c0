"""Percentiles of latency samples (seconds in, milliseconds out)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of samples in seconds, in milliseconds."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 2)


def summary(samples: Sequence[float], *, keep: bool = False) -> dict[str, Any]:
    """n, p50/p95/p99, mean, min and max of samples in seconds, as milliseconds (``keep``: all of them)."""
    if not samples:
        return {"n": 0}
    kept = {"samples_ms": [round(s * 1000, 2) for s in samples]} if keep else {}
    return {**kept,
        "n": len(samples),
        "p50_ms": percentile(samples, 50),
        "p95_ms": percentile(samples, 95),
        "p99_ms": percentile(samples, 99),
        "mean_ms": round(sum(samples) / len(samples) * 1000, 2),
        "min_ms": round(min(samples) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }
