"""The content vocabulary: the price quote and the AI's layouts, defined once.

These documents travel by S3 reference. The page parses them with ``from_dict``; the server
validates the AI's content and publishes its JSON schemas from these same definitions (see
``web_py/rules.py`` and ``chalice_app/content_schema.py``), so the two cannot drift apart. Every
limit below is the limit everywhere; every description is what the AI reads in the tool schema.

Prices stay decimal strings end to end; the page never does float arithmetic on a price it displays.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, get_args

from web_py.messages import MessageError
from web_py.rules import Document, Rule
from web_py.rules import check_decimal_string as check_decimal_string  # page_state checks prices with it

PriceSource = Literal["figure_markets", "simulated"]
PRICE_SOURCES: tuple[str, ...] = get_args(PriceSource)

MAX_TEXT = 10_000
# Titles, keys and labels are rendered inline; a long one would wreck the page rather than inform.
MAX_SHORT_TEXT = 200
MAX_ROWS = 100
MAX_POINTS = 1000
MAX_BLOCKS = 50
TextStyle = Literal["heading", "paragraph", "note"]
TEXT_STYLES: tuple[str, ...] = get_args(TextStyle)


# A price: a decimal string in USD, or null when the source does not know it.
Price = str | None
_USD = ", USD as a decimal string, or null when unknown"


@dataclass(frozen=True)
class PriceQuote(Document):
    """A quote of one market, as fetched from its source."""

    noun: ClassVar[str] = "price quote"

    symbol: Annotated[str, Rule("Market symbol, e.g. HASH-USD", min_len=1, max_len=MAX_SHORT_TEXT)]
    display_price: Annotated[str, Rule("The price to show, USD as a decimal string", decimal=True)]
    mid_market_price: Annotated[Price, Rule("Midpoint of best bid and best ask" + _USD, decimal=True)]
    last_traded_price: Annotated[Price, Rule("Price of the last trade" + _USD, decimal=True)]
    best_bid: Annotated[Price, Rule("Highest bid" + _USD, decimal=True)]
    best_ask: Annotated[Price, Rule("Lowest ask" + _USD, decimal=True)]
    index_price: Annotated[Price, Rule("Index price of the market" + _USD, decimal=True)]
    change_24h: Annotated[Price, Rule("Price change over the last 24 hours" + _USD, decimal=True)]
    change_24h_fraction: Annotated[
        Price, Rule("24h change as a decimal fraction (0.0199 is +1.99 %) as a decimal string, or null", decimal=True)
    ]
    volume_24h: Annotated[Price, Rule("Traded volume over 24 hours as a decimal string, or null", decimal=True)]
    high_24h: Annotated[Price, Rule("Highest price over 24 hours" + _USD, decimal=True)]
    low_24h: Annotated[Price, Rule("Lowest price over 24 hours" + _USD, decimal=True)]
    trade_count_24h: Annotated[int | None, Rule("Number of trades over 24 hours, or null")]
    source: Annotated[PriceSource, Rule("Where the quote came from")]
    fetched_at: Annotated[float, Rule("When the quote was fetched, epoch seconds")]

    @property
    def change_24h_percent(self) -> str | None:
        """The 24h change as a percentage string with two decimals ("1.99"), or None."""
        if self.change_24h_fraction is None:
            return None
        return str((Decimal(self.change_24h_fraction) * 100).quantize(Decimal("0.01")))


# --- Layouts: what the AI puts on the page --------------------------------------------------------

Title = Annotated[str | None, Rule("Heading shown above it, plain text", min_len=1, max_len=MAX_SHORT_TEXT)]


@dataclass(frozen=True)
class PriceCardBlock(Document):
    """The live HASH-USD price card, drawn from the latest quote (it carries no data of its own)."""

    kind: ClassVar[str] = "price_card"
    noun: ClassVar[str] = "price_card block"


@dataclass(frozen=True)
class TextBlock(Document):
    """A heading, paragraph or note."""

    kind: ClassVar[str] = "text"
    noun: ClassVar[str] = "text block"

    text: Annotated[str, Rule("The text, shown as plain text (never as HTML)", min_len=1, max_len=MAX_TEXT)]
    style: Annotated[TextStyle, Rule("How the text is shown: a heading, a paragraph or a smaller note")] = (
        "paragraph"
    )


@dataclass(frozen=True)
class KeyValueRow(Document):
    """One row of a key-value table."""

    noun: ClassVar[str] = "key_value row"

    key: Annotated[str, Rule("The label in the left column", min_len=1, max_len=MAX_SHORT_TEXT)]
    value: Annotated[str, Rule("The value in the right column (may be empty)", max_len=MAX_TEXT)]

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> KeyValueRow:
        # Layouts stored before rows became objects wrote them as [key, value] pairs; they stay
        # readable here. New content from the AI must use objects (the server's schema says so).
        if isinstance(data, list) and len(data) == 2:
            data = {"key": data[0], "value": data[1]}
        return super().from_dict(data, where)


@dataclass(frozen=True)
class KeyValueBlock(Document):
    """A two-column table of labelled values."""

    kind: ClassVar[str] = "key_value"
    noun: ClassVar[str] = "key_value block"

    rows: Annotated[tuple[KeyValueRow, ...], Rule("The rows, top to bottom", max_len=MAX_ROWS)]
    title: Title = None


@dataclass(frozen=True)
class ChartBlock(Document):
    """A line chart of numbers, oldest first."""

    kind: ClassVar[str] = "chart"
    noun: ClassVar[str] = "chart block"

    points: Annotated[
        tuple[Annotated[float, Rule("A value (any finite number)")], ...],
        Rule("The values to plot, left to right", min_len=1, max_len=MAX_POINTS),
    ]
    labels: Annotated[
        tuple[Annotated[str, Rule("Label of the point at the same index", max_len=MAX_SHORT_TEXT)], ...] | None,
        Rule("One label per point (same count as points), or null; the first and last are shown",
             max_len=MAX_POINTS),
    ] = None
    title: Title = None

    def check(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.points):
            raise MessageError(f"chart has {len(self.points)} points but {len(self.labels)} labels; they must match")


Block = PriceCardBlock | TextBlock | KeyValueBlock | ChartBlock


@dataclass(frozen=True)
class Layout(Document):
    """What the page shows below its header: blocks top to bottom. All text is shown as plain text."""

    noun: ClassVar[str] = "layout"

    blocks: Annotated[tuple[Block, ...], Rule("The blocks, top to bottom", min_len=1, max_len=MAX_BLOCKS)]
    title: Title = None


DEFAULT_LAYOUT = Layout(blocks=(PriceCardBlock(),))
