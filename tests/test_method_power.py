"""The method's power: on a market with a planted, known predictable component the default research loop finds it
and trades it at a profit after costs, and on a market of pure noise it finds nothing and stays (near) flat.

Both markets are served by the local fake exchange (tests/fakes/exchange_server.py) through the Binance source, so
the whole path runs as a user's would: collect_data, train_model (XGBoost at its defaults), run_backtest on the
walk-forward out-of-sample predictions with the default costs, risk and cost gate — for the triple-barrier labels
and for the forward-return target (target="return", whose R² must be positive on the plant).

The plant: hourly log returns r_t = κ/24 × (r_{t−1} + … + r_{t−24}) + ε_t, ε ~ N(0, σ²), κ = 0.6, σ = 0.5 %: each
hour drifts by 2.5 % of the trailing day's return. The next day's return then correlates about 0.44 with the trailing
day's, a feature the model sees. What the plant allows is measured on the same bars: an hourly long/short by the sign
of the true expected return, with no costs (about 25 annualised for four assets); the model, trading 24-bar holds
after costs, must earn a positive Sharpe whose interval excludes 0, and between a quarter of that and all of it.
The noise market is the same with κ = 0: nothing to find.
"""

import time

import numpy as np
import pandas as pd
import pytest
from fakes.exchange_server import HOUR_MS, TABLE_START_MS, FakeMarkets, running
from mcp import Client
from mcp_calls import call

from mcp_trader.config import Settings
from mcp_trader.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BASES = ("BTC", "ETH", "SOL", "XRP")
SYMBOLS = [f"{b}/USDT:USDT" for b in BASES]
KAPPA, SIGMA, LAG = 0.6, 0.005, 24


def market(kappa: float, seed: int) -> dict[str, np.ndarray]:
    hours = (int(time.time() * 1000) - TABLE_START_MS) // HOUR_MS + 4
    tables = {}
    for k, base in enumerate(BASES):
        rng = np.random.default_rng([seed, k])
        noise = rng.normal(0.0, SIGMA, hours)
        returns = np.zeros(hours)
        window = 0.0  # sum of the last LAG returns
        for t in range(hours):
            returns[t] = kappa / LAG * window + noise[t]
            window += returns[t] - (returns[t - LAG] if t >= LAG else 0.0)
        close = 100.0 * (k + 1) * np.exp(np.cumsum(returns))
        open_ = np.concatenate([[close[0]], close[:-1]])
        wick = np.abs(rng.normal(0.0, SIGMA / 3, (hours, 2)))
        high, low = np.maximum(open_, close) * (1 + wick[:, 0]), np.minimum(open_, close) * (1 - wick[:, 1])
        volume = rng.uniform(2e5, 4e5, hours) / close  # a few hundred thousand USDT an hour
        ms = TABLE_START_MS + np.arange(hours, dtype=np.int64) * HOUR_MS
        tables[base] = np.column_stack([ms, open_, high, low, close, volume])
    return tables


async def research(tmp_path, fake: FakeMarkets, target: str) -> tuple[dict, dict]:
    settings = Settings(home=tmp_path / "home", sources=("binance",), retries=2, backoff_s=0.01, **fake.urls())
    async with Client(build_server(settings)) as client:
        await call(client, "collect_data", {"symbols": SYMBOLS, "days": 365, "sources": ["binance"]})
        model = (await call(client, "train_model", {"symbols": SYMBOLS, "days": 365, "sources": ["binance"],
                                                    "target": target, "wait_seconds": 300}))["result"]
        run = (await call(client, "run_backtest", {"model_id": model["model_id"], "wait_seconds": 300}))["result"]
    return model, run


@pytest.fixture
def fake():
    with running() as markets:
        markets.list_symbols("binance", list(BASES))
        yield markets


def oracle_sharpe(tables: dict[str, np.ndarray], start: str, end: str) -> float:
    """What the plant allows: each hour, every asset held long or short by the sign of its trailing day's return
    (the sign of its true expected next return), equal weights, no costs; annualised Sharpe over [start, end]."""
    times = pd.to_datetime(next(iter(tables.values()))[:, 0], unit="ms", utc=True)
    span = (times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))
    earned = []
    for table in tables.values():
        returns = np.diff(np.log(table[:, 4]), prepend=np.nan)
        trailing = pd.Series(returns).rolling(LAG).sum().shift(1).to_numpy()
        earned.append(np.sign(trailing) * returns)
    portfolio = np.nanmean(np.array(earned)[:, span], axis=0)
    return float(portfolio.mean() / portfolio.std() * np.sqrt(8766))


@pytest.mark.parametrize("target", ["barrier", "return"])
async def test_a_planted_edge_is_found_and_pays_after_costs(tmp_path, fake, target: str):
    tables = market(KAPPA, seed=1)
    for base, table in tables.items():
        fake.plant(base, table)
    model, run = await research(tmp_path, fake, target)
    assert model["out_of_sample"]["ic"] > 0.2 and all(scale > 0 for scale in model["fold_edges"])
    if target == "return":
        assert model["out_of_sample"]["r2"] > 0 and model["out_of_sample"]["hit_rate"] > 0.55
    sharpe, band = run["metrics"]["sharpe"], run["intervals"]["sharpe"]
    allowed = oracle_sharpe(tables, run["start"], run["end"])
    print(f"\nplanted edge, {target}: IC {model['out_of_sample']['ic']:.3f}, R² {model['out_of_sample']['r2']:.4f}, "
          f"fold edges {model['fold_edges']}, net Sharpe {sharpe:.2f} ({band['low']:.2f} to {band['high']:.2f}), "
          f"the plant allows {allowed:.2f}; "
          f"{run['trades']['trades']} trades, return {run['metrics']['total_return']:+.1%}")
    assert band["low"] > 0 and run["metrics"]["total_return"] > 0, f"net Sharpe {sharpe:.2f}, interval {band}"
    assert 0.25 * allowed < sharpe < allowed, f"net Sharpe {sharpe:.2f} against the plant's {allowed:.2f}"
    paid = run["costs_paid"]["fees"] + run["costs_paid"]["slippage"]
    assert run["trades"]["trades"] > 100 and paid > 0 and "1.5 × the round-trip cost" in run["signals"]


@pytest.mark.parametrize("target", ["barrier", "return"])
async def test_pure_noise_is_found_to_have_no_edge(tmp_path, fake, target: str):
    for base, table in market(0.0, seed=2).items():
        fake.plant(base, table)
    model, run = await research(tmp_path, fake, target)
    assert abs(model["out_of_sample"]["ic"]) < 0.05 and not model["verdict"]["beats_baselines"]
    sharpe = run["intervals"]["sharpe"]
    flat = run["trades"]["trades"] == 0
    print(f"\npure noise, {target}: IC {model['out_of_sample']['ic']:.3f}, fold edges {model['fold_edges']}, "
          f"{run['trades']['trades']} trades, Sharpe {run['metrics']['sharpe']}, interval {sharpe}")
    assert flat or sharpe["low"] <= 0 <= sharpe["high"], f"noise scored Sharpe {run['metrics']['sharpe']}: {sharpe}"
    assert sum(scale > 0 for scale in model["fold_edges"]) <= 1  # a 95 % bound: one fold in four may pass by luck
