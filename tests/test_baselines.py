"""The baseline rules on hand-made markets: a trend is followed, a breakout held until the opposite one, the best
and worst 30-day performers are bought and sold, every decision comes from bars that have closed, and the future
never changes a past decision."""

import numpy as np
import pandas as pd
import pytest

from mcp_trader.backtest.baselines import RULES, rule_signals
from mcp_trader.features.panel import Panel

HOURS = 24 * 120


def panel(closes: np.ndarray) -> Panel:
    index = pd.date_range("2024-01-01", periods=len(closes), freq="1h", tz="UTC")
    closes = np.asarray(closes, dtype=np.float64)
    return Panel(symbols=tuple(f"A{i}/USDT" for i in range(closes.shape[1])), timeframe="1h", index=index,
                 open=closes, high=closes * 1.001, low=closes * 0.999, close=closes, volume=np.ones_like(closes))


def drift(*per_hour: float) -> np.ndarray:
    return 100 * np.exp(np.outer(np.arange(HOURS), per_hour))


def test_trend_rules_follow_a_rise_and_a_fall():
    market = panel(np.concatenate([drift(0.001, -0.001)[: HOURS // 2], drift(0.001, -0.001)[HOURS // 2:][::-1]]))
    for name in ("trend_4h", "trend_1d"):
        signal, strength, hold = rule_signals(name, market)
        assert hold == (4 if name == "trend_4h" else 24)
        assert (signal[HOURS // 2 - 1] == [1, -1]).all()  # 20 over 50 bars of the rise (of the fall)
        assert (signal[-1] == [-1, 1]).all() and (strength[HOURS // 2 - 1] > 0).all()
    assert (rule_signals("trend_1d", market)[0][: 50 * 24 - 1] == 0).all()  # no decision before 50 daily closes


def test_a_4h_rule_changes_only_where_a_4h_bar_closes():
    rng = np.random.default_rng(1)
    market = panel(100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(HOURS, 2)), axis=0)))
    signal, _, _ = rule_signals("breakout_4h", market)
    changes = np.flatnonzero((np.diff(signal, axis=0) != 0).any(axis=1)) + 1
    assert len(changes) > 5 and ((market.index[changes].hour + 1) % 4 == 0).all()


def test_a_breakout_is_held_until_the_opposite_breakout():
    up = drift(0.002)[: 24 * 60]
    flat = np.full((24 * 30, 1), up[-1, 0])
    down = up[-1, 0] * np.exp(-0.003 * np.arange(1, 24 * 30 + 1))[:, None]
    signal, _, _ = rule_signals("breakout_1d", panel(np.concatenate([up, flat, down])))
    assert signal[24 * 60 - 1, 0] == 1 and signal[24 * 85, 0] == 1  # still long through the flat month
    assert signal[-1, 0] == -1


def test_momentum_buys_the_best_third_and_sells_the_worst():
    signal, _, hold = rule_signals("momentum", panel(drift(0.0004, 0.0001, 0.0, -0.0001, -0.0002, -0.0004)))
    assert hold == 24 and signal[-1].tolist() == [1, 1, 0, 0, -1, -1]
    assert (signal[: 31 * 24 - 1] == 0).all()  # 30 daily returns are needed first


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_future_never_changes_a_past_decision(name):
    rng = np.random.default_rng(2)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(HOURS, 4)), axis=0))
    original, _, _ = rule_signals(name, panel(closes))
    for t in (1500, 2200):
        changed = closes.copy()
        changed[t + 1:] *= np.exp(np.cumsum(rng.normal(0, 0.03, size=changed[t + 1:].shape), axis=0))
        assert np.array_equal(rule_signals(name, panel(changed))[0][: t + 1], original[: t + 1]), (name, t)
