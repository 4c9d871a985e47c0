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
