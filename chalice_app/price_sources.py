"""Where HASH-USD quotes come from: Figure Markets, a simulated market, or the first that works.

Every source produces a ``web_py.content.PriceQuote``. Prices stay decimal strings from the upstream
JSON to the page; ``Decimal`` is only used to validate them and to derive the few values we compute.
The HTTP call is a plain ``opener(url) -> bytes`` so tests feed recorded bytes through the real parser.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Protocol

from chalice_app.errors import InvalidInput, UpstreamError
from web_py.content import PriceQuote
from web_py.messages import SESSION_ID_PATTERN, MessageError

FIGURE_MARKETS_URL = "https://www.figuremarkets.com/service-hft-exchange/api/v1/markets"
HASH_USD = "HASH-USD"
PRICE_SOURCE_NAMES = ("figure_markets", "simulated", "auto")

Opener = Callable[[str], bytes]
Clock = Callable[[], float]


class PriceSource(Protocol):
    name: str

    def fetch(self) -> PriceQuote: ...


# --- Figure Markets ----------------------------------------------------------------------------

# The markets list is a few kilobytes; anything near this is not the response we expect.
_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


def urllib_opener(timeout_s: float) -> Opener:
    """The production opener: one GET with urllib, the body as bytes; HTTP errors raise."""

    def open_url(url: str) -> bytes:
        request = urllib.request.Request(
            url, headers={"Accept": "application/json", "User-Agent": "pb-fm-webpage/0.1"}
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read(_MAX_RESPONSE_BYTES + 1)
        if len(body) > _MAX_RESPONSE_BYTES:
            raise UpstreamError(f"Figure Markets response exceeds {_MAX_RESPONSE_BYTES} bytes")
        return body

    return open_url


class FigureMarketsSource:
    """The live quote from Figure Markets' public markets list."""

    name = "figure_markets"

    def __init__(
        self,
        url: str = FIGURE_MARKETS_URL,
        timeout_s: float = 5.0,
        opener: Opener | None = None,
        *,
        symbol: str = HASH_USD,
        clock: Clock = time.time,
    ) -> None:
        # urllib also opens file:// and ftp:// URLs; a configurable URL must not reach those.
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"Figure Markets URL must be http(s): {url!r}")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.url = url
        self.timeout_s = timeout_s
        self.symbol = symbol
        self._opener = opener if opener is not None else urllib_opener(timeout_s)
        self._clock = clock

    def fetch(self) -> PriceQuote:
        try:
            body = self._opener(self.url)
        except UpstreamError:
            raise
        except urllib.error.HTTPError as exc:
            exc.close()
            raise UpstreamError(
                f"Figure Markets answered HTTP {exc.code} for {self.url}", details={"status": exc.code}
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            # URLError, timeouts, refused/reset connections, truncated or malformed HTTP.
            raise UpstreamError(f"Figure Markets is unreachable: {_describe(exc)}") from exc
        return parse_markets_response(body, symbol=self.symbol, fetched_at=self._clock())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_markets_response(body: bytes, *, symbol: str = HASH_USD, fetched_at: float) -> PriceQuote:
    """Turn the body of ``GET …/api/v1/markets`` into a quote for ``symbol``; UpstreamError if unusable."""
    try:
        document = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both land here
        raise UpstreamError(f"Figure Markets response is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise UpstreamError('Figure Markets response has no "data" list of markets')
    markets = [m for m in document["data"] if isinstance(m, dict) and m.get("symbol") == symbol]
    if not markets:
        raise UpstreamError(
            f"Figure Markets response has no {symbol} market among {len(document['data'])} markets"
        )
    market = markets[0]

    mid = _number(market, "midMarketPrice")
    last = _number(market, "lastTradedPrice")
    bid = _number(market, "bestBid")
    ask = _number(market, "bestAsk")
    fraction = _number(market, "percentageChange24h", signed=True)
    if fraction is not None and Decimal(fraction) < -1:
        raise UpstreamError(f"Figure Markets percentageChange24h {fraction} is below -100 %")
    try:
        return PriceQuote(
            symbol=symbol,
            display_price=_display_price(mid, last, bid, ask, symbol),
            mid_market_price=mid,
            last_traded_price=last,
            best_bid=bid,
            best_ask=ask,
            index_price=_number(market, "indexPrice"),
            change_24h=_number(market, "priceChange24h", signed=True),
            change_24h_fraction=fraction,
            volume_24h=_number(market, "volume24h"),
            high_24h=_number(market, "high24h"),
            low_24h=_number(market, "low24h"),
            trade_count_24h=_count(market, "tradeCount24h"),
            source="figure_markets",
            fetched_at=fetched_at,
        )
    except MessageError as exc:  # a safety net: every field was checked above
        raise UpstreamError(f"Figure Markets {symbol} quote is invalid: {exc}") from None


def _display_price(mid: str | None, last: str | None, bid: str | None, ask: str | None, symbol: str) -> str:
    # HASH trades a handful of times a day, so the mid tracks the market better than the last trade.
    # A "0" is what Figure Markets sends for a market with no book or no trade yet: not a price.
    for candidate in (mid, last):
        if candidate is not None and Decimal(candidate) > 0:
            return candidate
    if bid is not None and ask is not None and Decimal(bid) > 0 and Decimal(ask) > 0:
        return format((Decimal(bid) + Decimal(ask)) / 2, "f")
    raise UpstreamError(f"Figure Markets {symbol} has no usable price (no mid, last trade or bid/ask)")


def _number(market: dict[str, Any], key: str, *, signed: bool = False) -> str | None:
    """A decimal field as a plain decimal string, None when absent; UpstreamError when malformed."""
    value = market.get(key)
    if value is None or value == "":
        return None
    # Prices are documented as strings; accept a JSON number too rather than fail on a format drift.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UpstreamError(f"Figure Markets {key} is not a number: {value!r}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise UpstreamError(f"Figure Markets {key} is not a decimal: {value!r}") from None
    if not number.is_finite():
        raise UpstreamError(f"Figure Markets {key} is not finite: {value!r}")
    if number < 0 and not signed:
        raise UpstreamError(f"Figure Markets {key} is negative: {value!r}")
    # Plain notation keeps "0.0290" as sent but turns "2.9E-2" or "1_000" into something displayable.
    return format(number, "f")


def _count(market: dict[str, Any], key: str) -> int | None:
    value = market.get(key)
    if value is None:
        return None
    # Documented as a string, observed as an integer: take either, nothing else.
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise UpstreamError(f"Figure Markets {key} is not a non-negative integer: {value!r}")


# --- Simulated market --------------------------------------------------------------------------

# HASH has traded roughly between $0.01 and $0.06; the walk never leaves that band.
SIMULATED_FLOOR = Decimal("0.0100")
SIMULATED_CEILING = Decimal("0.0600")
_TICK = Decimal("0.00001")
_FRACTION_STEP = Decimal("0.0001")
_VOLUME_STEP = Decimal("0.01")
_STEP_SIGMA = 0.0015  # typical move per fetch: 0.15 %
_STEP_LIMIT = math.log1p(0.005)  # never more than 0.5 % in one fetch (the walk moves in log space)
_REVERSION = 0.0005  # a weak pull towards the start price, so the walk wanders without drifting off
_HALF_SPREAD = (0.003, 0.012)  # half the bid/ask spread, as a fraction of the mid
_TRADES_PER_HOUR = 0.3  # about seven trades a day, as thin as the real book
_TRADE_SIZE_HASH = (5_000.0, 400_000.0)
_HOUR = 3600.0


@dataclass
class _HourBucket:
    """One hour of the simulated tape; the last 24 of them are the 24h statistics."""

    hour: int
    open: Decimal
    high: Decimal
    low: Decimal
    trades: int = 0
    volume: Decimal = Decimal(0)

    def see(self, price: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)


def _ticks(value: float, rounding: str = "ROUND_HALF_EVEN") -> Decimal:
    return Decimal(repr(value)).quantize(_TICK, rounding=rounding)


class SimulatedSource:
    """A bounded random walk that looks like the HASH-USD book: thin, a real spread, 24h statistics.

    The same seed and the same clock readings give the same quotes. Safe to share between threads.
    """

    name = "simulated"

    def __init__(self, seed: int | None = None, start: str = "0.0290", clock: Clock = time.time) -> None:
        try:
            start_price = Decimal(start)
        except InvalidOperation:
            raise ValueError(f"start is not a decimal: {start!r}") from None
        if not (start_price.is_finite() and SIMULATED_FLOOR <= start_price <= SIMULATED_CEILING):
            raise ValueError(f"start must be within {SIMULATED_FLOOR}..{SIMULATED_CEILING}: {start}")
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.Lock()
        self._floor = float(SIMULATED_FLOOR)
        self._ceiling = float(SIMULATED_CEILING)
        self._anchor = float(start_price)
        self._price = self._anchor
        self._started = False
        self._last_time = clock()
        self._buckets: list[_HourBucket] = []
        self._last_trade = _ticks(self._anchor)
        self._seed_history(self._last_time)

    def fetch(self) -> PriceQuote:
        with self._lock:
            now = self._clock()
            # The first quote shows the start price itself; every later one moves.
            if self._started:
                self._step()
            self._started = True
            mid = _ticks(self._price)
            half = max(_TICK, _ticks(self._price * self._rng.uniform(*_HALF_SPREAD)))
            bid, ask = mid - half, mid + half
            bucket = self._bucket_for(now, mid)
            bucket.see(mid)
            self._maybe_trade(now, bucket, bid, ask)
            self._last_time = max(self._last_time, now)
            return self._quote(now, mid, bid, ask)

    def _step(self) -> None:
        shock = self._rng.gauss(0.0, _STEP_SIGMA)
        pull = _REVERSION * math.log(self._anchor / self._price)
        move = max(-_STEP_LIMIT, min(_STEP_LIMIT, shock + pull))
        price = self._price * math.exp(move)
        # Reflect (in log space) off the band's edges rather than sticking to them.
        if price > self._ceiling:
            price = self._ceiling**2 / price
        elif price < self._floor:
            price = self._floor**2 / price
        self._price = price

    def _bucket_for(self, now: float, price: Decimal) -> _HourBucket:
        hour = int(now // _HOUR)
        self._buckets = [b for b in self._buckets if b.hour > hour - 24]
        if self._buckets and self._buckets[-1].hour >= hour:  # same hour (or a clock step back)
            return self._buckets[-1]
        bucket = _HourBucket(hour=hour, open=price, high=price, low=price)
        self._buckets.append(bucket)
        return bucket

    def _maybe_trade(self, now: float, bucket: _HourBucket, bid: Decimal, ask: Decimal) -> None:
        elapsed = min(max(now - self._last_time, 0.0), _HOUR)
        if self._rng.random() >= 1.0 - math.exp(-_TRADES_PER_HOUR * elapsed / _HOUR):
            return
        # A taker crosses the spread: buys lift the ask, sells hit the bid.
        price = ask if self._rng.random() < 0.5 else bid
        self._record_trade(bucket, price)

    def _record_trade(self, bucket: _HourBucket, price: Decimal) -> None:
        low, high = _TRADE_SIZE_HASH
        size = math.exp(self._rng.uniform(math.log(low), math.log(high)))
        bucket.trades += 1
        bucket.volume += Decimal(repr(size)).quantize(_VOLUME_STEP)
        bucket.see(price)
        self._last_trade = price

    def _seed_history(self, now: float) -> None:
        """Invent the previous 23 hours so the first quote already has believable 24h statistics."""
        hour = int(now // _HOUR)
        open_24h = self._clamp(self._anchor * math.exp(self._rng.uniform(-0.04, 0.04)))
        for i in range(24):
            # Drift from the day's open to the start price, with some noise between the two ends.
            level = open_24h * (self._anchor / open_24h) ** (i / 23)
            if 0 < i < 23:
                level = self._clamp(level * math.exp(self._rng.gauss(0.0, 0.004)))
            price = _ticks(level)
            bucket = _HourBucket(hour=hour - 23 + i, open=price, high=price, low=price)
            bucket.see(_ticks(level * (1 + self._rng.uniform(0.0, 0.006)), ROUND_CEILING))
            bucket.see(_ticks(level * (1 - self._rng.uniform(0.0, 0.006)), ROUND_FLOOR))
            if self._rng.random() < _TRADES_PER_HOUR:
                self._record_trade(bucket, self._rng.choice((bucket.high, bucket.low)))
            self._buckets.append(bucket)
        if not any(b.trades for b in self._buckets):  # a page with no last trade at all looks broken
            self._record_trade(self._buckets[-1], _ticks(self._anchor))

    def _clamp(self, price: float) -> float:
        return min(max(price, self._floor), self._ceiling)

    def _quote(self, now: float, mid: Decimal, bid: Decimal, ask: Decimal) -> PriceQuote:
        buckets = self._buckets
        open_24h = buckets[0].open
        change = mid - open_24h
        index = _ticks(self._price * math.exp(self._rng.gauss(0.0, 0.002)))
        return PriceQuote(
            symbol=HASH_USD,
            display_price=str(mid),
            mid_market_price=str(mid),
            last_traded_price=str(self._last_trade),
            best_bid=str(bid),
            best_ask=str(ask),
            index_price=str(index),
            change_24h=str(change),
            change_24h_fraction=str((change / open_24h).quantize(_FRACTION_STEP)),
            volume_24h=str(sum((b.volume for b in buckets), Decimal("0.00"))),
            high_24h=str(max(b.high for b in buckets)),
            low_24h=str(min(b.low for b in buckets)),
            trade_count_24h=sum(b.trades for b in buckets),
            source="simulated",
            fetched_at=now,
        )


# One walk per session, so every refresh of a session continues its own smooth line. Bounded so a
# long-lived process does not keep a walk for every session it has ever seen.
_SIMULATED_MAX_SESSIONS = 1024
_simulated: OrderedDict[str, SimulatedSource] = OrderedDict()
_simulated_lock = threading.Lock()


def simulated_for(session_id: str) -> SimulatedSource:
    """This process's simulated market for one session (created on first use)."""
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.match(session_id):
        raise InvalidInput(f"invalid session id: {session_id!r}")
    with _simulated_lock:
        source = _simulated.get(session_id)
        if source is None:
            source = _simulated[session_id] = SimulatedSource()
            while len(_simulated) > _SIMULATED_MAX_SESSIONS:
                _simulated.popitem(last=False)
        else:
            _simulated.move_to_end(session_id)
        return source


# --- Choosing a source -------------------------------------------------------------------------


class AutoSource:
    """The primary source when it answers, otherwise the fallback; ``quote.source`` says which."""

    name = "auto"

    def __init__(self, primary: PriceSource, fallback: PriceSource) -> None:
        self.primary = primary
        self.fallback = fallback
        # Why the last quote did not come from the primary, for the caller to log; None when it did.
        self.last_error: UpstreamError | None = None

    def fetch(self) -> PriceQuote:
        try:
            quote = self.primary.fetch()
        except UpstreamError as exc:
            self.last_error = exc
            return self.fallback.fetch()
        self.last_error = None
        return quote


def make_price_source(name: str, *, session_id: str | None = None) -> PriceSource:
    """The source configured as ``name``; with a session id the simulated walk is that session's."""
    if name not in PRICE_SOURCE_NAMES:
        raise InvalidInput(
            f"unknown price source {name!r}; expected one of {', '.join(PRICE_SOURCE_NAMES)}",
            details={"allowed": list(PRICE_SOURCE_NAMES)},
        )
    if name == "figure_markets":
        return FigureMarketsSource()
    simulated = simulated_for(session_id) if session_id is not None else SimulatedSource()
    if name == "simulated":
        return simulated
    return AutoSource(FigureMarketsSource(), simulated)
