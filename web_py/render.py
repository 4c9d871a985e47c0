"""Render a ``PageState`` to the HTML inside the page's root element.

Pure and standard-library only. Every piece of text that reaches the output — the AI's layouts,
prices, ids, reasons — goes through ``html.escape``: the AI (or anyone who can make the server
store a document) can put characters on the page, never markup or script. Tags and attributes come
only from the literals in this file.

Everything except the per-viewer parts (this browser's role, "you", the connection state and the
enabled/disabled refresh button) is a function of the state alone, so all browsers of a session
produce the same markup for the same ``last_seq``. Times are shown in UTC for the same reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from typing import Literal

from web_py.content import Block, ChartBlock, KeyValueBlock, PriceCardBlock, TextBlock
from web_py.page_state import PageState, role_of
from web_py.sparkline import price_sparkline, sparkline_svg

Connection = Literal["connecting", "live", "reconnecting", "ended"]
REFRESH_ACTION = "refresh-price"


@dataclass(frozen=True)
class View:
    """What this one browser knows beyond the shared state."""

    client_id: str | None = None
    connection: Connection = "connecting"
    # The role the server gave at join/heartbeat, used until the event log names this client.
    server_role: str | None = None
    refresh_pending: bool = False
    # The server refused a refresh as too soon after the last one: disabled until it allows one.
    refresh_cooling: bool = False
    notice: str | None = None


def e(value: object) -> str:
    """Escape for text and double-quoted attribute values alike."""
    return escape(str(value), quote=True)


def utc_time(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch_seconds))


def role_for(state: PageState, view: View) -> str:
    if view.client_id is None:
        return "joining"
    listed = role_of(state, view.client_id)
    if listed is not None:
        return listed
    # Not in the list yet. A join or heartbeat answer may predate a ROLE_CHANGE this page has
    # already applied (a join promoted another tab while this one's beats were late): the log,
    # which every browser shows, names the master, so this page is not it.
    if view.server_role == "master" and state.master_client_id is not None:
        return "observer"
    return view.server_role or "joining"


def render_page(state: PageState, view: View) -> str:
    role = role_for(state, view)
    parts = [_topbar(state, view, role)]
    if state.ended:
        reason = f": {state.end_reason}" if state.end_reason else ""
        parts.append(f'<p class="card notice" data-testid="ended">This session has ended{e(reason)}.</p>')
    if view.notice:
        parts.append(f'<p class="card notice" data-testid="notice">{e(view.notice)}</p>')
    if state.layout.title is not None:
        parts.append(f'<h2 class="layout-title">{e(state.layout.title)}</h2>')
    parts.extend(render_block(block, state) for block in state.layout.blocks)
    parts.append(_controls(state, view, role))
    parts.append(_participants(state, view))
    parts.append(
        f'<footer class="status">Sequence <span data-testid="seq">{state.last_seq}</span>'
        f" · the same page in every browser of this session</footer>"
    )
    return "\n".join(parts)


def _topbar(state: PageState, view: View, role: str) -> str:
    return (
        '<header class="topbar"><h1>HASH-USD <span class="muted">live</span></h1>'
        '<div class="badges">'
        f'<span class="badge role {e(role)}" data-testid="role">{e(role)}</span>'
        f'<span class="badge connection {e(view.connection)}" data-testid="connection">'
        f"{e(view.connection)}</span></div></header>"
    )


def render_block(block: Block, state: PageState) -> str:
    if isinstance(block, PriceCardBlock):
        return price_card(state)
    if isinstance(block, TextBlock):
        if block.style == "heading":
            return f'<h2 class="block-heading">{e(block.text)}</h2>'
        return f'<p class="block-{e(block.style)}">{e(block.text)}</p>'
    if isinstance(block, KeyValueBlock):
        return _key_value(block)
    if isinstance(block, ChartBlock):
        return _chart(block)
    # Unreachable with a validated Layout; never echo an unknown object into the page.
    return ""


def price_card(state: PageState) -> str:
    quote = state.price
    if quote is None:
        return (
            '<section class="card price-card" data-testid="price-card">'
            '<p class="label">HASH-USD</p>'
            '<p class="price" data-testid="price" data-price="">—</p>'
            '<p class="muted">Waiting for the first price…</p></section>'
        )
    change = quote.change_24h_percent
    if change is None:
        change_html = '<span class="change" data-testid="change">—</span>'
    else:
        direction = "down" if change.startswith("-") else "up"
        sign = "" if direction == "down" else "+"
        change_html = (
            f'<span class="change {direction}" data-testid="change">{e(sign + change)} %</span>'
            '<span class="muted small"> 24h</span>'
        )
    rows = [
        ("Bid", quote.best_bid),
        ("Ask", quote.best_ask),
        ("Last trade", quote.last_traded_price),
        ("24h high", quote.high_24h),
        ("24h low", quote.low_24h),
        ("24h volume", quote.volume_24h),
    ]
    grid = "".join(
        f'<div><dt>{e(name)}</dt><dd data-testid="{e(name.lower().replace(" ", "-"))}">'
        f"{e(value if value is not None else '—')}</dd></div>"
        for name, value in rows
    )
    return (
        '<section class="card price-card" data-testid="price-card">'
        f'<p class="label">{e(quote.symbol)} · source <span data-testid="source">{e(quote.source)}</span></p>'
        f'<p class="price" data-testid="price" data-price="{e(quote.display_price)}">'
        f"${e(quote.display_price)}</p>"
        f"<p>{change_html}</p>"
        f'<dl class="quote-grid">{grid}</dl>'
        f'<p class="muted small">Updated <time data-testid="updated">{e(utc_time(quote.fetched_at))}</time></p>'
        f'<div data-testid="sparkline">{price_sparkline(state.price_history)}</div>'
        "</section>"
    )


def _key_value(block: KeyValueBlock) -> str:
    title = f"<h3>{e(block.title)}</h3>" if block.title is not None else ""
    rows = "".join(f"<tr><td>{e(row.key)}</td><td>{e(row.value)}</td></tr>" for row in block.rows)
    return f'<section class="card key-value">{title}<table class="kv"><tbody>{rows}</tbody></table></section>'


def _chart(block: ChartBlock) -> str:
    title = f"<h3>{e(block.title)}</h3>" if block.title is not None else ""
    svg = sparkline_svg(block.points, css_class="sparkline chart", label=block.title or "Chart")
    labels = ""
    if block.labels:
        labels = (
            f'<p class="muted small chart-labels"><span>{e(block.labels[0])}</span>'
            f" … <span>{e(block.labels[-1])}</span></p>"
        )
    return f'<section class="card chart">{title}{svg}{labels}</section>'


def _controls(state: PageState, view: View, role: str) -> str:
    is_master = role == "master" and view.connection == "live" and not state.ended
    if is_master:
        label = "Refreshing…" if view.refresh_pending else "Refreshed just now" if view.refresh_cooling \
            else "Refresh price"
        disabled = " disabled" if view.refresh_pending or view.refresh_cooling else ""
        hint = "You are the master: you may ask for a fresh price."
    else:
        label, disabled = "Refresh price", " disabled"
        hint = "Only the master can refresh the price."
    return (
        '<section class="controls">'
        f'<button type="button" data-action="{REFRESH_ACTION}" data-testid="refresh"{disabled}>{e(label)}</button>'
        f' <span class="muted small">{e(hint)}</span></section>'
    )


def _participants(state: PageState, view: View) -> str:
    items = []
    for person in state.participants:
        you = person.client_id == view.client_id
        classes = "self" if you else ""
        suffix = " (you)" if you else ""
        where = " · in chat" if person.in_chat else ""
        items.append(
            f'<li class="{classes}" data-client-id="{e(person.client_id)}" data-role="{e(person.role)}"'
            f'{" data-in-chat" if person.in_chat else ""}>'
            f"{e(person.client_id)} · {e(person.role)}{e(where)}{e(suffix)}</li>"
        )
    count = len(state.participants)
    return (
        '<section class="card participants" data-testid="participants" '
        f'data-count="{count}"><p class="label">{count} watching</p><ul>{"".join(items)}</ul></section>'
    )
