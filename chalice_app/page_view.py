"""What an assistant reads about its pages: the page state as a result model, and a text rendering.

The state itself is the service's fold of snapshot + events through the page's reducer
(``SessionService.page_state``); this module only turns it into the public ``PageView`` and into
a few lines a model can read at a glance.
"""

from __future__ import annotations

from chalice_app.models import PageView, ParticipantView, PricePoint, SessionList, SessionSummary
from chalice_app.page_links import PageLinks
from chalice_app.roles import Role
from chalice_app.sessions import SessionService, viewers_counter
from web_py.content import ChartBlock, KeyValueBlock, PriceCardBlock, TextBlock

# The price card's chart shows the recent points; a model needs no more than these to describe it.
RECENT_PRICES = 20
_TEXT_PREVIEW = 160


def page_view(service: SessionService, session_id: str, links: PageLinks) -> PageView:
    session = service.store.require_session(session_id, active=False)
    state = service.page_state(session)
    return PageView(
        session_id=session_id,
        page_url=links.page_url(session_id),
        title=session.title,
        status=session.status,
        last_seq=state.last_seq,
        price=state.price,
        recent_prices=[PricePoint(seq=seq, price=price) for seq, price in state.price_history[-RECENT_PRICES:]],
        layout=state.layout,
        master_client_id=state.master_client_id,
        participants=[ParticipantView(client_id=p.client_id, role=Role(p.role), joined_at=p.joined_at,
                                      in_chat=p.in_chat) for p in state.participants],
        ended=state.ended,
        end_reason=state.end_reason,
    )


def recent_sessions(service: SessionService, limit: int, links: PageLinks) -> SessionList:
    records = service.store.recent_sessions(limit)
    return SessionList(limit=limit, sessions=[
        SessionSummary(session_id=r.session_id, title=r.title, page_url=links.page_url(r.session_id),
                       created_at=r.created_at, expires_at=r.expires_at, last_seq=r.seq,
                       # The places taken (one GetItem): the fan-out set is no longer on METADATA.
                       browsers=service.store.slots(r.session_id, viewers_counter(r)))
        for r in records
    ])


def describe(view: PageView) -> str:
    """A short plain-text rendering of the page, for the model (the JSON stays the exact record)."""
    lines = [f"Page {view.title or view.session_id!r} at {view.page_url} ({view.status}, event {view.last_seq})."]
    if view.ended:
        lines.append(f"The session has ended: {view.end_reason or 'no reason given'}.")
    price = view.price
    if price is None:
        lines.append("Price card: no price published yet.")
    else:
        change = price.change_24h_percent
        lines.append(f"Price card: {price.symbol} {price.display_price} USD"
                     + (f" ({change} % over 24h)" if change is not None else "")
                     + f", source {price.source}, fetched at {price.fetched_at:.0f} (epoch seconds).")
    lines.append(f"Content ({len(view.layout.blocks)} block(s)" + (f", titled {view.layout.title!r}" if
                                                                    view.layout.title else "") + "):")
    lines.extend(f"  {i}. {_block_text(block)}" for i, block in enumerate(view.layout.blocks, 1))
    watchers = len(view.participants)
    in_chat = sum(1 for p in view.participants if p.in_chat)
    lines.append(f"Browsers watching: {watchers}" + (f" ({in_chat} in this chat)" if in_chat else "")
                 + (f"; master {view.master_client_id}." if view.master_client_id else "."))
    return "\n".join(lines)


def _block_text(block: object) -> str:
    if isinstance(block, PriceCardBlock):
        return "price card (the live HASH-USD price)"
    if isinstance(block, TextBlock):
        return f"{block.style}: {_preview(block.text)}"
    if isinstance(block, KeyValueBlock):
        rows = ", ".join(f"{row.key} = {_preview(row.value, 40)}" for row in block.rows[:5])
        more = f" and {len(block.rows) - 5} more" if len(block.rows) > 5 else ""
        return f"table{_titled(block.title)} with {len(block.rows)} row(s): {rows}{more}"
    if isinstance(block, ChartBlock):
        return (f"chart{_titled(block.title)} of {len(block.points)} point(s), from {block.points[0]:g} "
                f"to {block.points[-1]:g}")
    return type(block).__name__


def _titled(title: str | None) -> str:
    return f" {title!r}" if title else ""


def _preview(text: str, limit: int = _TEXT_PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


__all__ = ["describe", "page_view", "recent_sessions"]
