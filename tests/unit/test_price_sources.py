"""Price sources: the Figure Markets parser on a recorded response, the simulated walk, the fallback."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import urllib.error
from collections.abc import Callable, Iterator
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from chalice_app import price_sources
from chalice_app.errors import InvalidInput, UpstreamError
from chalice_app.price_sources import (
    FIGURE_MARKETS_URL,
    SIMULATED_CEILING,
    SIMULATED_FLOOR,
    AutoSource,
    FigureMarketsSource,
    SimulatedSource,
    make_price_source,
    simulated_for,
    urllib_opener,
)
from web_py.content import PriceQuote

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "figure_markets_markets.json"
RECORDED = FIXTURE.read_bytes()
NOW = 1_800_000_000.0


class Opener:
    """Hands back recorded bytes (or raises) and remembers the URLs it was asked for."""

    def __init__(self, body: bytes = RECORDED, error: BaseException | None = None) -> None:
        self.body = body
        self.error = error
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        return self.body


class Clock:
    def __init__(self, now: float = NOW, step: float = 0.0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


def with_hash_market(**changes: Any) -> bytes:
    """The recorded response with the HASH-USD record altered (a key set to ... is removed)."""
    document = json.loads(RECORDED)
    market = next(m for m in document["data"] if m["symbol"] == "HASH-USD")
    for key, value in changes.items():
        if value is ...:
            del market[key]
        else:
            market[key] = value
    return json.dumps(document).encode()


def figure(body: bytes = RECORDED) -> FigureMarketsSource:
    return FigureMarketsSource(opener=Opener(body), clock=Clock())


# --- Figure Markets: the recorded response -------------------------------------------------------


def test_recorded_response_maps_every_field() -> None:
    opener = Opener()
    quote = FigureMarketsSource(opener=opener, clock=Clock()).fetch()

    assert opener.urls == [FIGURE_MARKETS_URL]
    assert quote == PriceQuote(
        symbol="HASH-USD",
        display_price="0.029",
        mid_market_price="0.029",
        last_traded_price="0.0288",
        best_bid="0.0287",
        best_ask="0.0293",
        index_price="0.02905",
        change_24h="0.000566",
        change_24h_fraction="0.0199",
        volume_24h="183450.25",
        high_24h="0.0295",
        low_24h="0.0281",
        trade_count_24h=4,
        source="figure_markets",
        fetched_at=NOW,
    )
    # percentageChange24h is a fraction: 0.0199 is 1.99 %, not 0.02 %.
    assert quote.change_24h_percent == "1.99"
    assert PriceQuote.from_dict(json.loads(json.dumps(quote.to_dict()))) == quote


def test_picks_the_configured_symbol_from_the_same_response() -> None:
    quote = FigureMarketsSource(opener=Opener(), symbol="SOL-USD", clock=Clock()).fetch()
    assert (quote.symbol, quote.display_price, quote.change_24h_percent) == ("SOL-USD", "187.425", "1.69")


def test_negative_change_stays_signed() -> None:
    quote = figure(with_hash_market(priceChange24h="-0.0006", percentageChange24h="-0.0203")).fetch()
    assert (quote.change_24h, quote.change_24h_fraction, quote.change_24h_percent) == (
        "-0.0006", "-0.0203", "-2.03",
    )


@pytest.mark.parametrize(
    ("changes", "display", "mid"),
    [
        ({"midMarketPrice": None}, "0.0288", None),
        ({"midMarketPrice": ...}, "0.0288", None),
        ({"midMarketPrice": ""}, "0.0288", None),
        # "0" is what an empty book reports: kept as the mid field, never shown as the price.
        ({"midMarketPrice": "0"}, "0.0288", "0"),
        ({"midMarketPrice": None, "lastTradedPrice": None}, "0.0290", None),
        ({"midMarketPrice": "0", "lastTradedPrice": "0", "bestBid": "0.0280", "bestAsk": "0.0291"}, "0.02855", "0"),
    ],
)
def test_display_price_falls_back_from_mid_to_last_trade_to_book(
    changes: dict[str, Any], display: str, mid: str | None
) -> None:
    quote = figure(with_hash_market(**changes)).fetch()
    assert (quote.display_price, quote.mid_market_price) == (display, mid)


def test_tolerated_format_drift() -> None:
    quote = figure(
        with_hash_market(midMarketPrice=0.029, indexPrice="2.905E-2", tradeCount24h="4", bestBid=" 0.0287 ")
    ).fetch()
    assert (quote.display_price, quote.index_price, quote.trade_count_24h, quote.best_bid) == (
        "0.029", "0.02905", 4, "0.0287",
    )


def test_untraded_nullable_fields_become_none() -> None:
    quote = figure(with_hash_market(bestBid=None, bestAsk=None, percentageChange24h=None, tradeCount24h=...)).fetch()
    assert (quote.best_bid, quote.best_ask, quote.change_24h_fraction, quote.change_24h_percent) == (
        None, None, None, None,
    )
    assert quote.trade_count_24h is None


# --- Figure Markets: every way it can fail ------------------------------------------------------


def _http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(FIGURE_MARKETS_URL, code, "Service Unavailable", Message(), None)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (urllib.error.URLError(OSError(-3, "Temporary failure in name resolution")), "unreachable"),
        (urllib.error.URLError("no host given"), "unreachable"),
        (TimeoutError("timed out"), "unreachable: TimeoutError: timed out"),
        (ConnectionResetError(104, "Connection reset by peer"), "unreachable"),
        (http.client.IncompleteRead(b"{\"da"), "unreachable"),
        (http.client.RemoteDisconnected("closed"), "unreachable"),
        (_http_error(503), "HTTP 503"),
        (_http_error(429), "HTTP 429"),
    ],
)
def test_transport_failures_become_upstream_errors(error: BaseException, message: str) -> None:
    source = FigureMarketsSource(opener=Opener(error=error))
    with pytest.raises(UpstreamError, match=message) as caught:
        source.fetch()
    assert caught.value.status == 502


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        (b"[]", 'no "data" list'),
        (b'{"pagination": {}}', 'no "data" list'),
        (b'{"data": {"symbol": "HASH-USD"}}', 'no "data" list'),
        (b'{"data": [], "pagination": {"totalPages": 0}}', "no HASH-USD market among 0 markets"),
        (b'{"data": ["HASH-USD", null]}', "no HASH-USD market among 2 markets"),
    ],
)
def test_unusable_bodies_become_upstream_errors(body: bytes, message: str) -> None:
    with pytest.raises(UpstreamError, match=message):
        figure(body).fetch()


def test_missing_market_is_named() -> None:
    document = json.loads(RECORDED)
    document["data"] = [m for m in document["data"] if m["symbol"] != "HASH-USD"]
    with pytest.raises(UpstreamError, match="no HASH-USD market among 4 markets"):
        figure(json.dumps(document).encode()).fetch()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"midMarketPrice": "abc"}, "midMarketPrice is not a decimal"),
        ({"midMarketPrice": "NaN"}, "midMarketPrice is not finite"),
        ({"high24h": "Infinity"}, "high24h is not finite"),
        ({"lastTradedPrice": "-0.0288"}, "lastTradedPrice is negative"),
        ({"bestAsk": True}, "bestAsk is not a number"),
        ({"indexPrice": {"value": "0.029"}}, "indexPrice is not a number"),
        ({"volume24h": [1]}, "volume24h is not a number"),
        ({"priceChange24h": "1,5"}, "priceChange24h is not a decimal"),
        ({"percentageChange24h": "-1.5"}, "below -100 %"),
        ({"tradeCount24h": -1}, "tradeCount24h is not a non-negative integer"),
        ({"tradeCount24h": 2.5}, "tradeCount24h is not a non-negative integer"),
        ({"tradeCount24h": True}, "tradeCount24h is not a non-negative integer"),
        ({"tradeCount24h": "four"}, "tradeCount24h is not a non-negative integer"),
        (
            {"midMarketPrice": None, "lastTradedPrice": "0", "bestBid": None, "bestAsk": "0.0293"},
            "no usable price",
        ),
    ],
)
def test_bad_fields_become_upstream_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UpstreamError, match=message):
        figure(with_hash_market(**changes)).fetch()


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="http"):
        FigureMarketsSource(url="file:///etc/passwd")
    with pytest.raises(ValueError, match="timeout"):
        FigureMarketsSource(timeout_s=0)


# --- The real urllib opener, against a local server (no internet needed) -------------------------


@pytest.fixture
def local_markets() -> Iterator[Callable[[int, bytes], str]]:
    """A local HTTP server answering every GET with the status and body given; yields its URL maker."""
    answer: dict[str, Any] = {"status": 200, "body": RECORDED}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer["body"])))
            self.end_headers()
            self.wfile.write(answer["body"])

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(status: int, body: bytes) -> str:
        answer.update(status=status, body=body)
        return f"http://127.0.0.1:{server.server_address[1]}/service-hft-exchange/api/v1/markets"

    yield serve
    server.shutdown()
    server.server_close()
    thread.join()


def test_urllib_opener_reads_a_real_http_response(local_markets: Callable[[int, bytes], str]) -> None:
    url = local_markets(200, RECORDED)
    quote = FigureMarketsSource(url=url, timeout_s=2.0).fetch()
    assert (quote.display_price, quote.change_24h_percent, quote.source) == ("0.029", "1.99", "figure_markets")


def test_urllib_opener_turns_http_errors_into_upstream_errors(local_markets: Callable[[int, bytes], str]) -> None:
    url = local_markets(503, b'{"message": "maintenance"}')
    with pytest.raises(UpstreamError, match="HTTP 503"):
        FigureMarketsSource(url=url, timeout_s=2.0).fetch()


def test_urllib_opener_refused_connection() -> None:
    # Bind-and-close gives a port that was free a moment ago, so nothing answers there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamError, match="unreachable: ConnectionRefusedError"):
        FigureMarketsSource(url=f"http://127.0.0.1:{port}/markets", timeout_s=2.0).fetch()


def test_urllib_opener_caps_the_body_size(
    local_markets: Callable[[int, bytes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(price_sources, "_MAX_RESPONSE_BYTES", 100)
    url = local_markets(200, RECORDED)
    with pytest.raises(UpstreamError, match="exceeds 100 bytes"):
        urllib_opener(2.0)(url)


# --- The simulated market ----------------------------------------------------------------------


def test_first_quote_is_the_start_price() -> None:
    quote = SimulatedSource(seed=7, start="0.0310", clock=Clock()).fetch()
    assert (quote.display_price, quote.mid_market_price, quote.source, quote.fetched_at) == (
        "0.03100", "0.03100", "simulated", NOW,
    )


def test_walk_stays_realistic_over_ten_thousand_steps() -> None:
    # One quote every 30 s: 10,000 steps is about 83 hours, so the 24h window rolls over three times.
    source = SimulatedSource(seed=20261, clock=Clock(step=30.0))
    previous: Decimal | None = None
    mids: set[Decimal] = set()
    for _ in range(10_000):
        quote = source.fetch()
        mid = Decimal(quote.display_price)
        bid, ask = Decimal(quote.best_bid or "nan"), Decimal(quote.best_ask or "nan")
        high, low = Decimal(quote.high_24h or "nan"), Decimal(quote.low_24h or "nan")

        assert SIMULATED_FLOOR <= mid <= SIMULATED_CEILING
        assert quote.mid_market_price == quote.display_price
        assert bid < mid < ask
        assert (bid + ask) / 2 == mid
        assert Decimal("0.004") <= (ask - bid) / mid <= Decimal("0.03")  # a thin book's spread
        assert low <= mid <= high
        assert low <= Decimal(quote.last_traded_price or "nan") <= high or quote.trade_count_24h == 0
        assert quote.trade_count_24h is not None and 0 <= quote.trade_count_24h <= 25
        assert Decimal(quote.volume_24h or "nan") >= 0
        assert abs(Decimal(quote.index_price or "nan") / mid - 1) < Decimal("0.02")
        # Sensible decimals: five on prices, four on the fraction, and the fraction matches the change.
        assert mid.as_tuple().exponent == -5
        fraction = Decimal(quote.change_24h_fraction or "nan")
        assert fraction.as_tuple().exponent == -4
        open_24h = mid - Decimal(quote.change_24h or "nan")
        assert abs(fraction - Decimal(quote.change_24h or "nan") / open_24h) <= Decimal("0.00005")
        if previous is not None:
            # A fraction of a percent per step (plus half a tick of rounding on each side).
            assert abs(mid - previous) <= previous * Decimal("0.005") + Decimal("0.00001")
        previous = mid
        mids.add(mid)
    assert len(mids) > 100  # it really walks


def test_walk_reflects_off_the_band() -> None:
    low = SimulatedSource(seed=3, start="0.0100", clock=Clock(step=5.0))
    high = SimulatedSource(seed=3, start="0.0600", clock=Clock(step=5.0))
    for _ in range(2_000):
        assert Decimal(low.fetch().display_price) >= SIMULATED_FLOOR
        assert Decimal(high.fetch().display_price) <= SIMULATED_CEILING


def test_a_seed_reproduces_the_walk() -> None:
    def walk(seed: int) -> list[PriceQuote]:
        source = SimulatedSource(seed=seed, clock=Clock(step=60.0))
        return [source.fetch() for _ in range(500)]

    assert walk(42) == walk(42)
    assert [q.display_price for q in walk(42)] != [q.display_price for q in walk(43)]


def test_thin_trading_shows_in_the_24h_statistics() -> None:
    source = SimulatedSource(seed=11, clock=Clock(step=60.0))
    counts = [source.fetch().trade_count_24h or 0 for _ in range(3 * 24 * 60)]
    assert max(counts) <= 20
    assert sum(counts) / len(counts) < 12


@pytest.mark.parametrize("start", ["0.0099", "0.0601", "abc", "NaN"])
def test_start_outside_the_band_is_refused(start: str) -> None:
    with pytest.raises(ValueError):
        SimulatedSource(start=start)


def test_each_session_walks_its_own_line() -> None:
    first = simulated_for("test-walk-a")
    assert simulated_for("test-walk-a") is first
    assert simulated_for("test-walk-b") is not first
    a, b = first.fetch(), first.fetch()
    assert abs(Decimal(b.display_price) / Decimal(a.display_price) - 1) <= Decimal("0.0051")


def test_session_walks_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(price_sources, "_SIMULATED_MAX_SESSIONS", 2)
    oldest = simulated_for("bound-1")
    simulated_for("bound-2")
    simulated_for("bound-3")
    assert simulated_for("bound-1") is not oldest


@pytest.mark.parametrize("session_id", ["", "has space", "x" * 25, "a/b"])
def test_simulated_for_checks_the_session_id(session_id: str) -> None:
    with pytest.raises(InvalidInput):
        simulated_for(session_id)


# --- Auto and the factory ----------------------------------------------------------------------


def test_auto_prefers_figure_markets() -> None:
    auto = AutoSource(figure(), SimulatedSource(seed=1, clock=Clock()))
    quote = auto.fetch()
    assert (quote.source, quote.display_price) == ("figure_markets", "0.029")
    assert auto.last_error is None


def test_auto_falls_back_to_the_simulation_when_the_opener_raises() -> None:
    opener = Opener(error=urllib.error.URLError(OSError("Network is unreachable")))
    auto = AutoSource(FigureMarketsSource(opener=opener), SimulatedSource(seed=1, clock=Clock()))
    quote = auto.fetch()
    assert quote.source == "simulated"
    assert isinstance(auto.last_error, UpstreamError)
    assert "unreachable" in auto.last_error.message
    # Every fetch tries Figure Markets again; once it answers, its quote is back.
    opener.error = None
    assert auto.fetch().source == "figure_markets"
    assert auto.last_error is None
    assert len(opener.urls) == 2


def test_auto_falls_back_on_a_bad_response_too() -> None:
    auto = AutoSource(figure(b'{"data": []}'), SimulatedSource(seed=1, clock=Clock()))
    assert auto.fetch().source == "simulated"


def test_make_price_source() -> None:
    assert isinstance(make_price_source("figure_markets"), FigureMarketsSource)
    assert isinstance(make_price_source("simulated"), SimulatedSource)
    assert make_price_source("simulated", session_id="factory-1") is simulated_for("factory-1")
    auto = make_price_source("auto", session_id="factory-1")
    assert isinstance(auto, AutoSource)
    assert isinstance(auto.primary, FigureMarketsSource)
    assert auto.fallback is simulated_for("factory-1")
    assert {make_price_source(n).name for n in price_sources.PRICE_SOURCE_NAMES} == {
        "figure_markets", "simulated", "auto",
    }


@pytest.mark.parametrize("name", ["coinbase", "", "Simulated", "figure-markets"])
def test_unknown_source_name_is_invalid_input(name: str) -> None:
    with pytest.raises(InvalidInput, match="unknown price source") as caught:
        make_price_source(name)
    assert caught.value.status == 400
    assert caught.value.details == {"allowed": ["figure_markets", "simulated", "auto"]}
