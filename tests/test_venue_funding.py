"""Funding from the venue: collect_data fetches perpetual funding settlements through ccxt's fetchFundingRateHistory
from the local fake Aster (falling back to Binance USDⓈ-M), stores them with provenance, extends them incrementally,
and run_backtest and optimize charge them on spans past the bundled history, saying per symbol where they came
from."""

import pyarrow.parquet as pq
import pytest
from fakes.exchange_server import running
from mcp import Client
from mcp_calls import call

from mcp_trader.config import Settings
from mcp_trader.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
PERPS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


@pytest.fixture
def fake():
    with running() as markets:
        yield markets


def settings(tmp_path, fake) -> Settings:
    return Settings(home=tmp_path / "home", sources=("aster", "binance"), retries=1, backoff_s=0.01, **fake.urls())


def funding_requests(fake, source: str) -> list:
    return [r for r in fake.requests if r.source == source and "fundingRate" in r.path]


async def test_funding_is_fetched_stored_and_extended(tmp_path, fake):
    async with Client(build_server(settings(tmp_path, fake))) as client:
        first = await call(client, "collect_data", {"symbols": PERPS, "days": 60})
        assert [f["venue"] for f in first["funding"]] == ["aster", "aster"]
        assert all(178 <= f["new_settlements"] <= 183 for f in first["funding"])  # 60 days of 8-hourly settlements
        path = tmp_path / "home" / "funding" / "aster" / "BTC-USDT-PERP.parquet"
        provenance = pq.read_schema(path).metadata[b"mcp_trader.provenance"].decode()
        assert '"method": "ccxt fetchFundingRateHistory"' in provenance and '"venue": "aster"' in provenance
        last = first["funding"][0]["last"]
        fake.reset_requests()
        again = await call(client, "collect_data", {"symbols": PERPS, "days": 60})
        assert all(f["new_settlements"] <= 1 for f in again["funding"]) and again["funding"][0]["last"] >= last
        asked = [int(r.query["startTime"]) for r in funding_requests(fake, "aster")]
        assert asked and min(asked) > 1_704_067_200_000 + 800 * 86_400_000  # from the last settlement on, not day one


async def test_a_venue_down_falls_back_to_binance(tmp_path, fake):
    fake.fail("aster", "503", times=None, path="fundingRate")
    async with Client(build_server(settings(tmp_path, fake))) as client:
        answer = await call(client, "collect_data", {"symbols": ["BTC/USDT:USDT"], "days": 10})
    assert answer["funding"][0]["venue"] == "binance" and answer["funding"][0]["new_settlements"] >= 29
    assert funding_requests(fake, "binance")


async def test_a_backtest_past_the_bundled_history_charges_the_venues_funding(tmp_path, fake):
    async with Client(build_server(settings(tmp_path, fake))) as client:
        await call(client, "collect_data", {"symbols": PERPS, "days": 90})
        run = (await call(client, "run_backtest", {"strategy": "trend_4h", "symbols": PERPS, "days": 30,
                                                   "wait_seconds": 120}))["result"]
    assert run["start"] > "2025"  # far past the bundled history (2024-09)
    for cover in run["funding"]:
        assert cover["applied"] and "aster (fetchFundingRateHistory)" in cover["source"]
        assert 85 <= cover["settlements"] <= 93
    assert run["trades"]["trades"] > 0 and run["costs_paid"]["funding"] != 0


async def test_a_study_past_the_bundled_history_charges_the_venues_funding(tmp_path, fake):
    """optimize scores its trials with the same funding as run_backtest: the venue's stored settlements."""
    async with Client(build_server(settings(tmp_path, fake))) as client:
        await call(client, "collect_data", {"symbols": PERPS, "days": 90})
        summary = (await call(client, "optimize", {"target": "trend_4h", "symbols": PERPS, "days": 80, "folds": 2,
                                                   "n_trials": 2, "wait_seconds": 300}))["result"]
    assert summary["trials"]["complete"] + summary["trials"]["pruned"] == 2
    assert [c["symbol"] for c in summary["funding"]] == PERPS
    for cover in summary["funding"]:
        assert cover["applied"] and "aster (fetchFundingRateHistory)" in cover["source"], cover
        assert cover["first"] > "2025" and cover["settlements"] > 100
