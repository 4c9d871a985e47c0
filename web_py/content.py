"""Documents that travel by S3 reference: the price quote and the AI's layouts.

Strict, standard-library parsing so the page and the server agree on what is valid. Prices stay
decimal strings end to end; the page never does float arithmetic on a price it displays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from web_py.messages import MessageError

PRICE_SOURCES = ("figure_markets", "simulated")


def _decimal_string(name: str, value: Any, *, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise MessageError(f"{name} must be a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise MessageError(f"{name} is not a decimal: {value!r}") from None
    if not number.is_finite():
        raise MessageError(f"{name} must be finite")
    return value


def check_decimal_string(name: str, value: Any) -> str:
    """``value`` if it is a finite decimal string such as "0.0301", else MessageError naming ``name``."""
    checked = _decimal_string(name, value, nullable=False)
    assert checked is not None
    return checked


@dataclass(frozen=True)
class PriceQuote:
    symbol: str
    display_price: str
    mid_market_price: str | None
    last_traded_price: str | None
    best_bid: str | None
    best_ask: str | None
    index_price: str | None
    change_24h: str | None
    change_24h_fraction: str | None
    volume_24h: str | None
    high_24h: str | None
    low_24h: str | None
    trade_count_24h: int | None
    source: str
    fetched_at: float

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol:
            raise MessageError("symbol must be a non-empty string")
        _decimal_string("display_price", self.display_price, nullable=False)
        for name in (
            "mid_market_price", "last_traded_price", "best_bid", "best_ask", "index_price",
            "change_24h", "change_24h_fraction", "volume_24h", "high_24h", "low_24h",
        ):
            _decimal_string(name, getattr(self, name))
        if self.trade_count_24h is not None and (
            not isinstance(self.trade_count_24h, int) or isinstance(self.trade_count_24h, bool)
        ):
            raise MessageError("trade_count_24h must be an integer")
        if self.source not in PRICE_SOURCES:
            raise MessageError(f"source must be one of {PRICE_SOURCES}")
        if not isinstance(self.fetched_at, (int, float)) or isinstance(self.fetched_at, bool):
            raise MessageError("fetched_at must be epoch seconds")

    @property
    def change_24h_percent(self) -> str | None:
        """The 24h change as a percentage string with two decimals ("1.99"), or None."""
        if self.change_24h_fraction is None:
            return None
        return str((Decimal(self.change_24h_fraction) * 100).quantize(Decimal("0.01")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PriceQuote:
        if not isinstance(data, dict):
            raise MessageError("a price quote must be a JSON object")
        names = {f.name for f in fields(cls)}
        missing = names - set(data)
        unknown = set(data) - names
        if missing or unknown:
            raise MessageError(f"price quote fields: missing {sorted(missing)}, unknown {sorted(unknown)}")
        return cls(**data)


# --- Layouts: what the AI puts on the page --------------------------------------------------------

MAX_TEXT = 10_000
# Titles, keys and labels are rendered inline; a long one would wreck the page rather than inform.
MAX_SHORT_TEXT = 200
MAX_ROWS = 100
MAX_POINTS = 1000
MAX_BLOCKS = 50
TEXT_STYLES = ("heading", "paragraph", "note")


def _string(where: str, value: Any, *, max_len: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise MessageError(f"{where} must be a string, got {type(value).__name__}")
    if not allow_empty and value == "":
        raise MessageError(f"{where} must not be empty")
    if len(value) > max_len:
        raise MessageError(f"{where} is {len(value)} characters long, at most {max_len} allowed")
    return value


def _optional_title(where: str, value: Any) -> str | None:
    return None if value is None else _string(where, value, max_len=MAX_SHORT_TEXT)


def _number(where: str, value: Any) -> int | float:
    # bool is an int subclass; True as a chart point is almost certainly a bug upstream.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MessageError(f"{where} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise MessageError(f"{where} must be finite")
    return value


def _sequence(where: str, value: Any, *, max_len: int) -> tuple[Any, ...]:
    # Tuples are accepted so that a block built in Python passes its own validation.
    if not isinstance(value, (list, tuple)):
        raise MessageError(f"{where} must be an array")
    if len(value) > max_len:
        raise MessageError(f"{where} has {len(value)} entries, at most {max_len} allowed")
    return tuple(value)


def _fields_of(
    where: str, data: Any, required: set[str], optional: set[str], *, kind: str | None = None
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MessageError(f"{where} must be a JSON object")
    if kind is not None and data.get("kind") != kind:
        raise MessageError(f"{where} must have kind {kind!r}, got {data.get('kind')!r}")
    missing = required - set(data)
    unknown = set(data) - required - optional
    if missing:
        raise MessageError(f"{where} is missing {sorted(missing)}")
    if unknown:
        raise MessageError(f"{where} has unknown fields {sorted(unknown)}")
    return data


@dataclass(frozen=True)
class PriceCardBlock:
    """The live HASH-USD price, rendered from the page state (it carries no data of its own)."""

    kind = "price_card"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, data: Any, where: str = "price_card block") -> PriceCardBlock:
        _fields_of(where, data, {"kind"}, set(), kind=cls.kind)
        return cls()


@dataclass(frozen=True)
class TextBlock:
    text: str
    style: str = "paragraph"

    kind = "text"

    def __post_init__(self) -> None:
        _string("text block text", self.text, max_len=MAX_TEXT)
        if self.style not in TEXT_STYLES:
            raise MessageError(f"text block style must be one of {TEXT_STYLES}, got {self.style!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "style": self.style}

    @classmethod
    def from_dict(cls, data: Any, where: str = "text block") -> TextBlock:
        _fields_of(where, data, {"kind", "text", "style"}, set(), kind=cls.kind)
        return cls(text=data["text"], style=data["style"])


@dataclass(frozen=True)
class KeyValueBlock:
    rows: tuple[tuple[str, str], ...]
    title: str | None = None

    kind = "key_value"

    def __post_init__(self) -> None:
        _optional_title("key_value block title", self.title)
        rows = _sequence("key_value block rows", self.rows, max_len=MAX_ROWS)
        normalised = []
        for i, row in enumerate(rows):
            pair = _sequence(f"key_value row {i}", row, max_len=2)
            if len(pair) != 2:
                raise MessageError(f"key_value row {i} must be a [key, value] pair")
            key = _string(f"key_value row {i} key", pair[0], max_len=MAX_SHORT_TEXT)
            value = _string(f"key_value row {i} value", pair[1], max_len=MAX_TEXT, allow_empty=True)
            normalised.append((key, value))
        # Frozen: normalise lists from JSON into tuples so blocks stay hashable and comparable.
        object.__setattr__(self, "rows", tuple(normalised))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "rows": [list(row) for row in self.rows]}
        if self.title is not None:
            data["title"] = self.title
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "key_value block") -> KeyValueBlock:
        _fields_of(where, data, {"kind", "rows"}, {"title"}, kind=cls.kind)
        return cls(rows=data["rows"], title=data.get("title"))


@dataclass(frozen=True)
class ChartBlock:
    points: tuple[int | float, ...]
    labels: tuple[str, ...] | None = None
    title: str | None = None

    kind = "chart"

    def __post_init__(self) -> None:
        _optional_title("chart block title", self.title)
        points = _sequence("chart block points", self.points, max_len=MAX_POINTS)
        checked_points = tuple(_number(f"chart point {i}", p) for i, p in enumerate(points))
        object.__setattr__(self, "points", checked_points)
        if self.labels is not None:
            labels = _sequence("chart block labels", self.labels, max_len=MAX_POINTS)
            if len(labels) != len(points):
                raise MessageError(
                    f"chart block has {len(points)} points but {len(labels)} labels; they must match"
                )
            checked = tuple(
                _string(f"chart label {i}", label, max_len=MAX_SHORT_TEXT, allow_empty=True)
                for i, label in enumerate(labels)
            )
            object.__setattr__(self, "labels", checked)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "points": list(self.points)}
        if self.title is not None:
            data["title"] = self.title
        if self.labels is not None:
            data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "chart block") -> ChartBlock:
        _fields_of(where, data, {"kind", "points"}, {"title", "labels"}, kind=cls.kind)
        return cls(points=data["points"], labels=data.get("labels"), title=data.get("title"))


Block = PriceCardBlock | TextBlock | KeyValueBlock | ChartBlock
BLOCK_KINDS: dict[str, type[PriceCardBlock | TextBlock | KeyValueBlock | ChartBlock]] = {
    cls.kind: cls for cls in (PriceCardBlock, TextBlock, KeyValueBlock, ChartBlock)
}


def block_from_dict(data: Any, where: str = "block") -> Block:
    if not isinstance(data, dict):
        raise MessageError(f"{where} must be a JSON object")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in BLOCK_KINDS:
        raise MessageError(f"{where} has unknown kind {kind!r}; expected one of {sorted(BLOCK_KINDS)}")
    return BLOCK_KINDS[kind].from_dict(data, f"{where} ({kind})")


@dataclass(frozen=True)
class Layout:
    title: str | None
    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        _optional_title("layout title", self.title)
        blocks = _sequence("layout blocks", self.blocks, max_len=MAX_BLOCKS)
        for i, block in enumerate(blocks):
            if not isinstance(block, tuple(BLOCK_KINDS.values())):
                raise MessageError(f"layout block {i} is not a block: {type(block).__name__}")
        object.__setattr__(self, "blocks", blocks)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "blocks": [block.to_dict() for block in self.blocks]}

    @classmethod
    def from_dict(cls, data: Any) -> Layout:
        _fields_of("layout", data, {"blocks"}, {"title"})
        blocks = _sequence("layout blocks", data["blocks"], max_len=MAX_BLOCKS)
        return cls(
            title=data.get("title"),
            blocks=tuple(block_from_dict(b, f"layout block {i}") for i, b in enumerate(blocks)),
        )


DEFAULT_LAYOUT = Layout(title=None, blocks=(PriceCardBlock(),))
