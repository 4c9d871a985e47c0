"""render.py and sparkline.py: escaped, deterministic HTML for the page."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from web_py.content import Layout, PriceQuote
from web_py.page_state import PageState, Participant
from web_py.render import View, render_page
from web_py.sparkline import polyline_points, price_sparkline

ALICE = "aaaaaaaaaaa1"
BOB = "bbbbbbbbbbb2"
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> " \' & </p><b>'
# Every tag render.py may emit; anything else in the output came from data and is an injection.
ALLOWED_TAGS = {
    "header",
    "h1",
    "h2",
    "h3",
    "span",
    "div",
    "section",
    "p",
    "dl",
    "dt",
    "dd",
    "time",
    "svg",
    "polyline",
    "table",
    "tbody",
    "tr",
    "td",
    "button",
    "ul",
    "li",
    "footer",
}


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(markup)
    collector.close()
    return collector


def quote(price: str, **extra: Any) -> PriceQuote:
    data: dict[str, Any] = dict.fromkeys(
        (
            "mid_market_price",
            "last_traded_price",
            "best_bid",
            "best_ask",
            "index_price",
            "change_24h",
            "change_24h_fraction",
            "volume_24h",
            "high_24h",
            "low_24h",
            "trade_count_24h",
        ),
    )
    data.update(symbol="HASH-USD", display_price=price, source="figure_markets", fetched_at=1_700_000_000.0)
    data.update(extra)
    return PriceQuote.from_dict(data)


def state_with(layout: dict[str, Any] | None = None, **changes: Any) -> PageState:
    people = (Participant(ALICE, "master", 1.0), Participant(BOB, "observer", 2.0))
    base: dict[str, Any] = dict(
        last_seq=3,
        price=quote("0.0285", best_bid="0.028", best_ask="0.029", change_24h_fraction="0.0199"),
        price_history=((2, "0.0280"), (3, "0.0285")),
        master_client_id=ALICE,
        participants=people,
    )
    if layout is not None:
        base["layout"] = Layout.from_dict(layout)
    base.update(changes)
    return PageState(**base)


def test_price_card_shows_quote_fields() -> None:
    html = render_page(state_with(), View(client_id=ALICE, connection="live"))
    assert 'data-testid="price" data-price="0.0285">$0.0285<' in html
    assert "+1.99 %" in html
    assert ">0.028<" in html and ">0.029<" in html
    assert "2023-11-14 22:13:20 UTC" in html
    assert 'data-testid="source">figure_markets<' in html


def test_roles_and_refresh_button_follow_the_state() -> None:
    state = state_with()
    master = render_page(state, View(client_id=ALICE, connection="live"))
    observer = render_page(state, View(client_id=BOB, connection="live"))
    assert 'data-testid="role">master<' in master
    assert 'data-testid="role">observer<' in observer
    assert 'data-testid="refresh">Refresh price' in master
    assert 'data-testid="refresh" disabled>' in observer
    # Not live yet: even the master cannot press it.
    assert 'data-testid="refresh" disabled>' in render_page(state, View(client_id=ALICE))


def test_unknown_client_uses_the_server_role_until_listed() -> None:
    html = render_page(state_with(), View(client_id="ccccccccccc3", server_role="observer"))
    assert 'data-testid="role">observer<' in html


def test_a_stale_master_answer_gives_way_to_the_master_the_log_names() -> None:
    # This tab was master when the server last answered it; since then a join promoted ALICE (its
    # ROLE_CHANGE is applied) and no participant list names this tab yet.
    unlisted = "ccccccccccc3"
    html = render_page(state_with(), View(client_id=unlisted, connection="live", server_role="master"))
    assert 'data-testid="role">observer<' in html and 'data-testid="refresh" disabled>' in html
    # Before the log names any master, the server's word is all the page has.
    alone = render_page(state_with(master_client_id=None, participants=()),
                        View(client_id=unlisted, connection="live", server_role="master"))
    assert 'data-testid="role">master<' in alone


def test_participants_listed_with_self_marked() -> None:
    markup = render_page(state_with(), View(client_id=BOB, connection="live"))
    assert 'data-testid="participants" data-count="2"' in markup
    assert f"{BOB} · observer (you)" in markup


@pytest.mark.parametrize(
    "layout",
    [{"title": HOSTILE[:200], "blocks": [{"kind": "price_card"}]}]
    + [{"blocks": [{"kind": "text", "text": HOSTILE, "style": style}]} for style in ("heading", "paragraph", "note")]
    + [
        {"blocks": [{"kind": "key_value", "title": HOSTILE[:200], "rows": [{"key": HOSTILE[:200], "value": HOSTILE}]}]},
        {"blocks": [{"kind": "chart", "title": HOSTILE[:200], "points": [1, 2], "labels": [HOSTILE[:200], "b"]}]},
    ],
)
def test_hostile_layout_text_is_only_ever_text(layout: dict[str, Any]) -> None:
    markup = render_page(state_with(layout), View(client_id=ALICE, connection="live"))
    parsed = parse(markup)
    tags = {tag for tag, _ in parsed.tags}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    attributes = {name for _, attrs in parsed.tags for name, _ in attrs}
    assert not [name for name in attributes if name.startswith("on")]
    # The text survives intact, as text.
    assert "<script>window.pwned=1</script>" in "".join(parsed.text)


def test_hostile_session_end_reason_and_notice_are_escaped() -> None:
    state = state_with(ended=True, end_reason=HOSTILE)
    markup = render_page(state, View(client_id=ALICE, connection="ended", notice=HOSTILE))
    assert {tag for tag, _ in parse(markup).tags} <= ALLOWED_TAGS


def test_same_state_same_markup_for_the_shared_parts() -> None:
    state = state_with()
    first = render_page(state, View(client_id=ALICE, connection="live"))
    again = render_page(PageState.from_dict(state.to_dict()), View(client_id=ALICE, connection="live"))
    assert first == again


def test_sparkline_is_deterministic_and_scaled() -> None:
    history = ((1, "1"), (2, "3"), (3, "2"))
    assert polyline_points(["1", "3", "2"], 100, 20) == "0.00,17.00 50.00,3.00 100.00,10.00"
    assert price_sparkline(history) == price_sparkline(tuple(history))
    assert 'data-points="3"' in price_sparkline(history)


def test_sparkline_edge_cases() -> None:
    assert polyline_points([]) == ""
    assert polyline_points(["5"], 100, 20) == "50.00,10.00"
    assert polyline_points(["5", "5"], 100, 20) == "0.00,10.00 100.00,10.00"
    assert polyline_points([1e300, -1e300, 0.5], 10, 10) == "0.00,3.00 5.00,7.00 10.00,5.00"
