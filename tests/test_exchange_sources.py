"""Network sources through the collect_data tool, against a fake Aster/Binance/CoinGecko on 127.0.0.1.

The fake (tests/fakes/exchange_server.py) speaks the venues' real REST protocols; ccxt and httpx
reach it through our Settings' URLs, and faults are injected on the wire, never by patching our code.
"""

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fakes.exchange_server import HOUR_MS, FakeMarkets, candle_table, running
from mcp import Client

from mcp_trader.config import Settings
from mcp_trader.data.store import CandleStore
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio

START, END = "2024-03-01T00:00:00Z", "2024-03-03T00:00:00Z"  # 48 hourly bars


def ms(text: str) -> int:
    return int(pd.Timestamp(text).timestamp() * 1000)


@pytest.fixture
def fake() -> Iterator[FakeMarkets]:
    with running() as server:
        yield server


@pytest.fixture
def make_settings(tmp_path: Path, fake: FakeMarkets):
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "home": tmp_path / "home", "retries": 3, "backoff_s": 0.01, "request_timeout_s": 2.0, **fake.urls(),
        }
        return Settings(**{**values, **overrides})

    return make


async def collect(settings: Settings, **args: Any) -> dict[str, Any]:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("collect_data", args)
        assert not result.is_error, result.content[0].text
        return result.structured_content


async def read(client: Client, uri: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(uri)).contents[0].text)


def outcomes(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["source"], a["outcome"]) for a in dataset["attempts"]]


def reason(dataset: dict[str, Any], source: str) -> str:
    return next(a["reason"] for a in dataset["attempts"] if a["source"] == source)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _last_complete_hour() -> str:
    return pd.Timestamp(time.time() // 3600 * 3600 - 3600, unit="s").strftime("%Y-%m-%dT%H:%M:%SZ")


def stored(record: dict[str, Any]) -> pd.DataFrame:
    path = Path(record["path"])
    return CandleStore(path.parent).read(path)


def table_between(base: str, start_ms: int, end_ms: int) -> np.ndarray:
    table = candle_table(base)
    return table[(table[:, 0] >= start_ms) & (table[:, 0] < end_ms)]


async def test_aster_serves_a_perp_window_over_two_pages(fake: FakeMarkets, make_settings):
    settings = make_settings()
    last_hours = {_last_complete_hour()}
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("collect_data", {"symbols": ["BTC/USDT"], "timeframes": ["1h"], "days": 70})
        last_hours.add(_last_complete_hour())  # the hour may have turned during the call
        assert not result.is_error, result.content[0].text
        out = result.structured_content
        (btc,) = out["datasets"]
        assert btc["source"] == "aster" and btc["dataset_id"] == "aster.BTC-USDT-PERP.1h"
        assert btc["symbol"] == "BTC/USDT:USDT" and btc["synthetic"] is False
        assert outcomes(btc) == [("aster", "served")]
        assert btc["rows"] == btc["new_rows"] == 70 * 24
        assert ms(btc["end"]) - ms(btc["start"]) == (70 * 24 - 1) * HOUR_MS
        assert btc["end"] in last_hours
        assert btc["quality"] == "clean" and out["unserved"] == []

        # ccxt's aster class: both exchangeInfo hosts for load_markets, then v3 klines pages of at most 1500, and
        # the perpetual's funding settlements for the window.
        paths = {(r.venue, r.path) for r in fake.requests if r.source == "aster"}
        assert paths == {("aster-spot", "/api/v3/exchangeInfo"), ("aster", "/fapi/v3/exchangeInfo"),
                         ("aster", "/fapi/v3/klines"), ("aster", "/fapi/v3/fundingRate")}
        assert out["funding"][0]["venue"] == "aster" and out["funding"][0]["new_settlements"] >= 70 * 3 - 1
        pages = fake.kline_requests("aster")
        assert len(pages) == 2
        assert all(p.query["symbol"] == "BTCUSDT" and p.query["interval"] == "1h" for p in pages)
        assert [p.query["limit"] for p in pages] == ["1500", "1500"]
        assert int(pages[0].query["startTime"]) == ms(btc["start"])
        assert int(pages[1].query["startTime"]) == ms(btc["start"]) + 1500 * HOUR_MS
        assert all(int(p.query["endTime"]) == ms(btc["end"]) + HOUR_MS - 1 for p in pages)

        # The stored candles are the venue's, parsed from its 12-element rows of string decimals.
        record = await read(client, "trader://datasets/aster.BTC-USDT-PERP.1h")
        frame = stored(record)
        expected = table_between("BTC", ms(btc["start"]), ms(btc["end"]) + HOUR_MS)
        assert len(frame) == len(expected) == 70 * 24
        np.testing.assert_array_equal(frame.index.as_unit("ms").asi8, expected[:, 0].astype(np.int64))
        np.testing.assert_allclose(frame[["open", "high", "low", "close", "volume"]].to_numpy(), expected[:, 1:])
        assert record["provenance"]["ranges"][0]["rows"] == 70 * 24


async def test_aster_serves_coarser_timeframes_natively(fake: FakeMarkets, make_settings):
    out = await collect(make_settings(), symbols=["ETH/USDT:USDT"], timeframes=["1h", "4h"], start=START, end=END)
    by_tf = {d["timeframe"]: d for d in out["datasets"]}
    assert by_tf["1h"]["rows"] == 48 and by_tf["4h"]["rows"] == 12
    assert by_tf["4h"]["source"] == "aster" and by_tf["4h"]["resampled_from"] is None
    assert sorted(r.query["interval"] for r in fake.kline_requests("aster")) == ["1h", "4h"]


@pytest.mark.parametrize("how", ["503 always", "closed port"])
async def test_binance_serves_when_aster_is_down(fake: FakeMarkets, make_settings, how: str):
    if how == "503 always":
        fake.fail("aster", "503", times=None)
        settings = make_settings()
    else:
        settings = make_settings(aster_url=closed_port_url(), aster_spot_url=closed_port_url())
    out = await collect(settings, symbols=["ETH/USDT"], start=START, end=END)
    (eth,) = out["datasets"]
    assert eth["source"] == "binance" and eth["dataset_id"] == "binance.ETH-USDT-PERP.1h"
    assert outcomes(eth) == [("aster", "unavailable"), ("binance", "served")]
    assert "ExchangeNotAvailable" in reason(eth, "aster")
    assert eth["rows"] == 48
    # The perpetual (and its funding) comes from Binance's USDⓈ-M futures API, and only its markets were loaded.
    assert {(r.venue, r.path) for r in fake.requests if r.source == "binance"} == {
        ("binance-fapi", "/fapi/v1/exchangeInfo"), ("binance-fapi", "/fapi/v1/klines"),
        ("binance-fapi", "/fapi/v1/fundingRate"),
    }
    if how == "503 always":
        assert all(r.status == 503 for r in fake.requests if r.source == "aster")
        assert len([r for r in fake.requests if r.source == "aster"]) == settings.retries  # retried, then given up


async def test_binance_spot_pages_by_1000_when_aster_lists_no_spot_market(fake: FakeMarkets, make_settings):
    out = await collect(make_settings(), symbols=["BTC/USDT"], market="spot", start="2024-03-01", end="2024-04-15")
    (btc,) = out["datasets"]
    assert btc["source"] == "binance" and btc["symbol"] == "BTC/USDT" and btc["rows"] == 45 * 24
    assert outcomes(btc) == [("aster", "not_listed"), ("binance", "served")]
    pages = fake.kline_requests("binance")
    assert [(p.path, p.query["limit"]) for p in pages] == [("/api/v3/klines", "1000")] * 2
    assert [int(p.query["startTime"]) for p in pages] == [ms("2024-03-01"), ms("2024-03-01") + 1000 * HOUR_MS]
    assert not [r for r in fake.requests if r.venue == "binance-fapi"]


@pytest.mark.parametrize(
    ("source", "kind", "path", "status"),
    [
        ("aster", "429", "klines", 429),
        ("aster", "503", "klines", 503),
        ("aster", "malformed", "klines", 200),
        ("aster", "malformed", "/fapi/v3/exchangeInfo", 200),
        ("binance", "502", "klines", 502),
        ("binance", "malformed", "klines", 200),
        ("binance", "refuse", "klines", None),
        ("coingecko", "429", "market_chart", 429),
        ("coingecko", "malformed", "market_chart", 200),
    ],
)
async def test_a_transient_fault_is_retried_and_the_same_source_serves(
    fake: FakeMarkets, make_settings, source: str, kind: str, path: str, status: int
):
    fake.fail(source, kind, times=1, path=path, retry_after=0)
    out = await collect(make_settings(), symbols=["BTC/USDT"], start=START, end=END, sources=[source])
    (btc,) = out["datasets"]
    assert btc["source"] == source and outcomes(btc) == [(source, "served")]
    assert btc["rows"] == 48 and btc["quality"] == "clean"
    hit = [r for r in fake.requests if path in r.path]
    assert [(r.fault, r.status) for r in hit[:2]] == [(kind, status), (None, 200)]


async def test_retry_after_is_honoured(fake: FakeMarkets, make_settings):
    fake.fail("binance", "429", times=1, path="klines", retry_after=1)
    out = await collect(make_settings(backoff_s=0.01), symbols=["BTC/USDT"], start=START, end=END, sources=["binance"])
    assert out["datasets"][0]["source"] == "binance"
    limited, retried = fake.kline_requests("binance")
    assert limited.status == 429 and retried.status == 200
    assert retried.at - limited.at >= 0.9


async def test_a_source_that_times_out_is_unavailable_and_the_next_serves_quickly(
    fake: FakeMarkets, make_settings
):
    fake.fail("aster", "timeout", times=None, delay_s=10)
    settings = make_settings(request_timeout_s=0.5)
    began = time.monotonic()
    out = await collect(settings, symbols=["BTC/USDT"], start=START, end=END)
    elapsed = time.monotonic() - began
    (btc,) = out["datasets"]
    assert btc["source"] == "binance" and btc["rows"] == 48
    assert outcomes(btc) == [("aster", "unavailable"), ("binance", "served")]
    assert "RequestTimeout" in reason(btc, "aster")
    assert elapsed < 8, f"the call took {elapsed:.1f} s"


async def test_every_network_source_failing_falls_back_to_the_sample(fake: FakeMarkets, make_settings):
    fake.fail("aster", "503", times=None)
    fake.fail("binance", "malformed", times=None)
    fake.fail("coingecko", "429", times=None, retry_after=0)
    out = await collect(
        make_settings(), symbols=["BTC/USDT"], start=START, end=END,
        sources=["aster", "binance", "coingecko", "sample"],
    )
    (btc,) = out["datasets"]
    assert btc["source"] == "sample" and btc["rows"] == 48 and btc["synthetic"] is False
    assert outcomes(btc) == [
        ("aster", "unavailable"), ("binance", "unavailable"), ("coingecko", "unavailable"), ("sample", "served")
    ]
    assert "ExchangeNotAvailable" in reason(btc, "aster") and "503" in reason(btc, "aster")
    assert "BadResponse" in reason(btc, "binance") and "not JSON" in reason(btc, "binance")
    assert reason(btc, "coingecko") == "HTTP 429 from coingecko"
    assert len(fake.kline_requests("coingecko")) == 3  # retried up to settings.retries


async def test_a_gap_in_the_history_is_reported_not_filled(fake: FakeMarkets, make_settings):
    fake.gap("aster", ms("2024-03-02T05:00Z"), ms("2024-03-02T12:00Z"))  # 7 bars withheld
    settings = make_settings()
    async with Client(build_server(settings)) as client:
        result = await client.call_tool(
            "collect_data", {"symbols": ["BTC/USDT"], "start": START, "end": "2024-03-04T00:00:00Z"}
        )
        assert not result.is_error, result.content[0].text
        (btc,) = result.structured_content["datasets"]
        assert btc["source"] == "aster" and btc["rows"] == 72 - 7
        assert btc["quality"] == "1 gaps (7 bars missing)"
        record = await read(client, "trader://datasets/aster.BTC-USDT-PERP.1h")
    quality = record["quality"]
    assert quality["gap_count"] == 1 and quality["missing_bars"] == 7
    assert quality["rows"] == 65 and quality["expected_rows"] == 72
    assert quality["largest_gaps"] == [{"start": "2024-03-02T05:00Z", "end": "2024-03-02T11:00Z", "bars": 7}]
    frame = stored(record)
    times = frame.index.as_unit("ms").asi8
    assert not ((times >= ms("2024-03-02T05:00Z")) & (times < ms("2024-03-02T12:00Z"))).any()
    assert frame.loc["2024-03-02T12:00Z", "open"] == table_between("BTC", ms("2024-03-02T12:00Z"), ms(END))[0, 1]


async def test_a_second_identical_call_fetches_nothing_and_a_longer_one_only_the_tail(
    fake: FakeMarkets, make_settings
):
    settings = make_settings()
    async with Client(build_server(settings)) as client:

        async def call(**args: Any) -> dict[str, Any]:
            result = await client.call_tool("collect_data", {"symbols": ["BTC/USDT"], **args})
            assert not result.is_error, result.content[0].text
            return result.structured_content["datasets"][0]

        first = await call(start=START, end=END)
        assert first["source"] == "aster" and first["rows"] == first["new_rows"] == 48
        fake.reset_requests()
        again = await call(start=START, end=END)
        assert fake.kline_requests() == []
        assert again["source"] == "aster" and again["new_rows"] == 0 and again["rows"] == 48
        assert again["content_hash"] == first["content_hash"]
        longer = await call(start=START, end="2024-03-03T06:00:00Z")
        (tail,) = fake.kline_requests()
        assert int(tail.query["startTime"]) == ms(END)
        assert longer["new_rows"] == 6 and longer["rows"] == 54
    # A new session on the same home remembers the stored windows too.
    fake.reset_requests()
    out = await collect(settings, symbols=["BTC/USDT"], start=START, end="2024-03-03T06:00:00Z")
    assert out["datasets"][0]["new_rows"] == 0 and fake.kline_requests() == []


async def test_coingecko_builds_approximate_hourly_bars_when_the_exchanges_are_down(
    fake: FakeMarkets, make_settings
):
    fake.fail("aster", "503", times=None)
    fake.fail("binance", "503", times=None)
    out = await collect(make_settings(), symbols=["BTC/USDT"], start=START, end=END,
                        sources=["aster", "binance", "coingecko"])
    (btc,) = out["datasets"]
    assert btc["source"] == "coingecko" and btc["rows"] == 48
    assert outcomes(btc) == [("aster", "unavailable"), ("binance", "unavailable"), ("coingecko", "served")]
    assert any("approximate" in note for note in btc["notes"])
    (chart,) = fake.kline_requests("coingecko")
    assert chart.path == "/api/v3/coins/bitcoin/market_chart/range"
    assert chart.query == {"vs_currency": "usd", "from": str((ms(START) - HOUR_MS) // 1000), "to": str(ms(END) // 1000)}
    # One snapshot per hour at the bar's close: closes match, each open is the previous close.
    async with Client(build_server(make_settings())) as client:
        frame = stored(await read(client, "trader://datasets/coingecko.BTC-USDT-PERP.1h"))
    table = table_between("BTC", ms(START) - HOUR_MS, ms(END))
    np.testing.assert_allclose(frame["close"].to_numpy(), table[1:, 4])
    np.testing.assert_allclose(frame["open"].to_numpy(), table[:-1, 4])


@pytest.mark.parametrize(("symbols", "field"), [(["FOO/USDT"], "symbols[0]"), (["BTC/USDT", "FOO/USDT"], "symbols[1]")])
async def test_an_unknown_symbol_is_a_tool_error_and_nothing_is_written(
    fake: FakeMarkets, make_settings, symbols: list[str], field: str
):
    async with Client(build_server(make_settings())) as client:
        result = await client.call_tool("collect_data", {"symbols": symbols, "sources": ["aster", "binance"]})
        assert result.is_error
        text = result.content[0].text
        assert field in text and "FOO/USDT" in text and "aster, binance" in text
        assert (await read(client, "trader://datasets"))["datasets"] == []
    assert fake.kline_requests() == []


async def test_later_sources_are_not_asked_when_an_earlier_one_serves(fake: FakeMarkets, make_settings):
    out = await collect(make_settings(), symbols=["BTC/USDT:USDT"], start=START, end=END,
                        sources=["aster", "binance", "coingecko"])
    assert outcomes(out["datasets"][0]) == [("aster", "served")]
    assert {r.source for r in fake.requests} == {"aster"}
