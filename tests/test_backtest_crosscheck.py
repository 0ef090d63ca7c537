"""Backtest engine against vectorbt: the same trades on a year of real BTC hourly candles give the same equity.

Our engine runs an SMA 24/96 crossover (known at each close, filled at the next open) with stops, take-profits,
the holding limit, impact and funding all off, so only the fill convention and the costs are left: fixed
slippage that worsens each market fill by a fraction, and a taker fee on the filled notional. Its trades are
then replayed in vectorbt as orders of our quantities at the entry and exit bars' opens (the last bar's close
for the final exit), with the same fees, slippage and starting cash; the two must agree bar by bar.
"""

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from mcp_trader.backtest.engine import EXIT_REASONS, Simulation, simulate
from mcp_trader.backtest.params import Costs, Risk
from mcp_trader.data.sources.sample import load
from mcp_trader.policy.limits import RiskLimits

CAPITAL = 10_000.0
COSTS = Costs(taker_fee=0.0005, slippage_bps=3.0, impact=0.0, funding=False)
VOLATILITY = 0.01  # the ATR handed to the engine, as a fraction of the close: the stop sits 50 × 1 % = 50 % away
# 0.25 × equity over a stop 0.5 × close away: half the equity in notional, so vectorbt never runs short of cash.
RISK = Risk(risk_per_trade=0.25, stop_atr=50.0, take_profit_atr=0.0, max_positions=1, max_leverage=1.0,
            max_order_notional=1e12)


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load("BTC").loc["2023-01-01":"2023-12-31"]


def crossover(close: np.ndarray) -> np.ndarray:
    """+1 while the 24-bar mean of the closes up to t is above the 96-bar mean, −1 while below; 0 before both exist.
    The second-to-last close repeats the one before so that no order is decided for the last bar's open."""
    closes = pd.Series(close)
    signal = np.sign(closes.rolling(24).mean() - closes.rolling(96).mean()).fillna(0).to_numpy().astype(np.int8)
    signal[-2] = signal[-3]
    return signal


def ours(candles: pd.DataFrame, allow_short: bool) -> Simulation:
    open_, high, low, close, volume = (candles[name].to_numpy()[:, None]
                                       for name in ("open", "high", "low", "close", "volume"))
    signal = crossover(close[:, 0])[:, None]
    risk = RISK.model_copy(update={"allow_short": allow_short})
    return simulate(open_, high, low, close, volume, signal, np.ones_like(close), VOLATILITY * close,
                    np.zeros_like(close), CAPITAL, risk.policy(RiskLimits(), 0, 0), COSTS)


def replay(candles: pd.DataFrame, sim: Simulation) -> vbt.Portfolio:
    """Our trades as vectorbt orders: + side × quantity at the entry bar, − at the exit bar, netted per bar (a
    reversal is one order), at the open; the end exit at the last close."""
    bars = len(candles)
    size = np.zeros(bars)
    side, qty = sim.trade("side"), sim.trade("quantity")
    np.add.at(size, sim.trade("entry_bar").astype(int), side * qty)
    np.add.at(size, sim.trade("exit_bar").astype(int), -side * qty)
    price = candles["open"].to_numpy().copy()
    price[-1] = candles["close"].iloc[-1]
    return vbt.Portfolio.from_orders(
        candles["close"], size=np.where(size != 0, size, np.nan), price=price, fees=COSTS.taker_fee,
        slippage=COSTS.slippage_bps / 1e4, init_cash=CAPITAL, direction="both", freq="1h",
    )


@pytest.mark.parametrize("allow_short", [True, False], ids=["long-short", "long-only"])
def test_engine_equity_matches_vectorbt_replaying_its_trades(candles: pd.DataFrame, allow_short: bool) -> None:
    sim = ours(candles, allow_short)
    reasons = [EXIT_REASONS[int(r)] for r in sim.trade("exit_reason")]
    last = len(candles) - 1
    assert set(reasons) <= {"signal", "end"} and len(sim.trades) > 50
    assert (sim.trade("entry_bar") < last).all()  # the last bar holds only the end exit, at the close
    assert (sim.trade("exit_bar")[np.array(reasons) != "end"] < last).all()
    if not allow_short:
        assert (sim.trade("side") == 1).all()

    pf = replay(candles, sim)
    changes = np.diff(np.r_[0.0, sim.positions[:, 0]])
    np.testing.assert_allclose(pf.orders.records["size"], np.abs(changes[changes != 0]), rtol=1e-12)  # none cut
    assert pf.trades.count() == len(sim.trades)
    final = float(pf.final_value())
    assert final == pytest.approx(sim.equity[-1], rel=1e-9)  # far inside 0.1 %: the two agree to rounding
    np.testing.assert_allclose(pf.value().to_numpy(), sim.equity, rtol=1e-9)
    records = pf.trades.records.sort_values("entry_idx")
    np.testing.assert_allclose(records["pnl"].to_numpy(), sim.trade("pnl"), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(records["entry_price"].to_numpy(), sim.trade("entry_price"), rtol=1e-12)
    np.testing.assert_allclose(records["exit_price"].to_numpy(), sim.trade("exit_price"), rtol=1e-12)
