"""The bench plot as a dependency-free SVG (matplotlib is not a project dependency).

Three panels: the latency distribution (CDF) of updates and of the transport floor; fan-out time
against the number of browsers beside N x the single-send floor; late-joiner time against the
length of the history.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

W, H = 420, 300
MARGIN = {"left": 60, "right": 16, "top": 34, "bottom": 46}
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


class Panel:
    def __init__(self, x0: int, title: str, xlabel: str, ylabel: str, xs: list[float], ys: list[float],
                 *, logx: bool = False) -> None:
        self.x0, self.logx = x0, logx
        self.parts: list[str] = []
        fx = [self._tx(x) for x in xs] or [0.0, 1.0]
        self.xmin, self.xmax = min(fx), max(fx)
        if self.xmax == self.xmin:
            self.xmax = self.xmin + 1
        self.ymax = _nice(max(ys) if ys else 1.0)
        left, top = x0 + MARGIN["left"], MARGIN["top"]
        self.plot_w, self.plot_h = W - MARGIN["left"] - MARGIN["right"], H - MARGIN["top"] - MARGIN["bottom"]
        self.parts.append(f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" '
                          f'font-weight="bold">{escape(title)}</text>')
        self.parts.append(f'<rect x="{left}" y="{top}" width="{self.plot_w}" height="{self.plot_h}" '
                          'fill="none" stroke="#999"/>')
        self.parts.append(f'<text x="{left + self.plot_w / 2}" y="{H - 8}" '
                          f'text-anchor="middle">{escape(xlabel)}</text>')
        self.parts.append(f'<text x="{x0 + 14}" y="{top + self.plot_h / 2}" text-anchor="middle" '
                          f'transform="rotate(-90 {x0 + 14} {top + self.plot_h / 2})">{escape(ylabel)}</text>')
        for i in range(5):
            value = self.ymax * i / 4
            y = self.py(value)
            self.parts.append(f'<line x1="{left}" x2="{left + self.plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            self.parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')

    def _tx(self, x: float) -> float:
        return math.log10(max(x, 1e-9)) if self.logx else x

    def px(self, x: float) -> float:
        return self.x0 + MARGIN["left"] + (self._tx(x) - self.xmin) / (self.xmax - self.xmin) * self.plot_w

    def py(self, y: float) -> float:
        return MARGIN["top"] + self.plot_h - min(y, self.ymax) / self.ymax * self.plot_h

    def xticks(self, values: list[float]) -> None:
        for value in values:
            x = self.px(value)
            self.parts.append(f'<text x="{x:.1f}" y="{MARGIN["top"] + self.plot_h + 16}" '
                              f'text-anchor="middle">{value:,g}</text>')

    def line(self, xs: list[float], ys: list[float], colour: str, label: str, index: int, *,
             dashed: bool = False, dots: bool = True) -> None:
        if not xs:
            return
        points = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in zip(xs, ys, strict=True))
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        self.parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        if dots:
            for x, y in zip(xs, ys, strict=True):
                self.parts.append(f'<circle cx="{self.px(x):.1f}" cy="{self.py(y):.1f}" r="3" fill="{colour}"/>')
        lx, ly = self.x0 + MARGIN["left"] + 8, MARGIN["top"] + 14 + 14 * index
        self.parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
                          f'stroke-width="2"{dash}/><text x="{lx + 22}" y="{ly}">{escape(label)}</text>')


def _nice(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _cdf(samples: list[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(samples)
    return ordered, [100 * (i + 1) / len(ordered) for i in range(len(ordered))]


def write_plot(result: dict[str, Any], path: Path) -> Path:
    figures = result["figures"]
    panels: list[Panel] = []

    # 1. latency distribution
    floor = figures["floor"]["send_to_receive"].get("samples_ms", [])
    update = (figures.get("update_latency") or {}).get("latency", {}).get("samples_ms", [])
    series = [(s, name) for s, name in ((update, "MCP call → price in DOM (8 pages)"),
                                         (floor, "floor: SQS send → receive")) if s]
    xs = [x for s, _ in series for x in s]
    panel = Panel(0, "Latency distribution", "milliseconds", "% of samples ≤ x", xs, [100])
    for i, (samples, name) in enumerate(series):
        cx, cy = _cdf(samples)
        panel.line(cx, cy, COLOURS[i], name, i, dots=False)
    if xs:
        panel.xticks([round(min(xs)), round((min(xs) + max(xs)) / 2), round(max(xs))])
    if not update:
        panel.parts.append(f'<text x="{W / 2 + 20}" y="{H / 2 + 30}" text-anchor="middle" fill="#a00">'
                           'update latency: not measured</text>')
    panels.append(panel)

    # 2. fan-out
    fan = figures.get("fanout", [])
    ns = [float(r["browsers"]) for r in fan]
    sends = [r["fanout"]["p50_ms"] for r in fan]
    publish = [r["publish"]["p50_ms"] for r in fan]
    applied = [r["all_applied"].get("p50_ms", math.nan) for r in fan]
    floor_line = [r["n_x_single_send_ms"] for r in fan]
    panel = Panel(W, "Fan-out (p50)", "browsers N", "milliseconds", ns,
                  [v for v in sends + publish + applied + floor_line if not math.isnan(v)])
    panel.line(ns, floor_line, "#777", "N x single send (floor)", 0, dashed=True)
    panel.line(ns, sends, COLOURS[0], "sends only", 1)
    panel.line(ns, publish, COLOURS[1], "whole publish", 2)
    ok = [(n, a) for n, a in zip(ns, applied, strict=True) if not math.isnan(a)]
    panel.line([n for n, _ in ok], [a for _, a in ok], COLOURS[2], "publish → all applied", 3)
    panel.xticks(ns)
    panels.append(panel)

    # 3. late joiner
    late = figures.get("late_joiner", [])
    sizes = [float(r["history"]) for r in late]
    p50 = [r["join_to_caught_up"]["p50_ms"] for r in late]
    p95 = [r["join_to_caught_up"]["p95_ms"] for r in late]
    panel = Panel(2 * W, "Late joiner", "events in history (log)", "milliseconds", sizes, [*p95, 100], logx=True)
    panel.line(sizes, p50, COLOURS[0], "join → caught up, p50", 0)
    panel.line(sizes, p95, COLOURS[1], "p95", 1)
    panel.xticks(sizes)
    panels.append(panel)

    m = result["machine"]
    caption = (f"pb-fm-webpage bench {result['date']} — {m['cpu']}, {m['cores']} cores, moto {m['moto']} "
               "(all AWS calls against one local moto server)")
    body = "\n".join(part for p in panels for part in p.parts)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * W}" height="{H + 24}" '
           f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n'
           f'{body}\n<text x="8" y="{H + 16}" fill="#555">{escape(caption)}</text>\n</svg>\n')
    path.write_text(svg)
    return path
