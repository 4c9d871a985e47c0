"""SVG sparklines drawn by our own Python, so every browser (late joiners too) draws the same bytes.

Pure functions of the input: no clock, no randomness, fixed decimal formatting. Coordinates come
from ``Decimal`` arithmetic on the price strings, so the output cannot depend on float rounding
differences between CPython builds (the server's and Pyodide's).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape

WIDTH = 300
HEIGHT = 60
# Keep the line off the top and bottom edges so the stroke is not clipped.
MARGIN = 3
_STEP = Decimal("0.01")


def _fmt(value: Decimal) -> str:
    text = str(value.quantize(_STEP, rounding=ROUND_HALF_EVEN))
    return "0.00" if text == "-0.00" else text


def polyline_points(values: Sequence[Decimal | int | float | str], width: int = WIDTH, height: int = HEIGHT) -> str:
    """``"x,y x,y …"`` for values spread evenly left to right, scaled to the box (higher is up)."""
    numbers = [Decimal(str(v)) for v in values]
    if not numbers:
        return ""
    low, high = min(numbers), max(numbers)
    top, bottom = Decimal(MARGIN), Decimal(height - MARGIN)
    span = high - low
    last = len(numbers) - 1
    points = []
    for i, number in enumerate(numbers):
        x = Decimal(width) * i / last if last else Decimal(width) / 2
        # A flat series sits in the middle rather than on an edge.
        y = (top + bottom) / 2 if span == 0 else bottom - (number - low) * (bottom - top) / span
        points.append(f"{_fmt(x)},{_fmt(y)}")
    return " ".join(points)


def sparkline_svg(
    values: Sequence[Decimal | int | float | str],
    *,
    css_class: str = "sparkline",
    label: str = "Price history",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """An inline SVG element; ``css_class`` and ``label`` are plain text (escaped here)."""
    points = polyline_points(values, width, height)
    return (
        f'<svg class="{escape(css_class)}" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(label)}" data-points="{len(values)}">'
        f'<polyline points="{points}"></polyline></svg>'
    )


def price_sparkline(history: Sequence[tuple[int, str]]) -> str:
    """The session's price history (``PageState.price_history``: ``(seq, price)`` pairs)."""
    return sparkline_svg([price for _, price in history])
