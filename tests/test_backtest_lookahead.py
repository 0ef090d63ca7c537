"""Look-ahead: changing the candles after bar t changes no trade decided at or before t.

The whole path a confluence backtest takes (features → the confluence rule → ATR → the engine) runs on
real candles, then again with every candle after t perturbed; every entry and exit decided at or before
t, with its side and size, and the equity curve up to t, must be identical.
"""

import numpy as np
import pandas as pd
import pytest
from causality import perturb_after, sample_frames

from mcp_trader.backtest import edge
from mcp_trader.backtest.engine import Simulation, simulate, utc_days
from mcp_trader.backtest.inputs import confluence_score
from mcp_trader.backtest.params import DEFAULT_MARGIN, Costs
from mcp_trader.features import builder
from mcp_trader.features.indicators import atr
from mcp_trader.features.panel import align
from mcp_trader.features.spec import make_spec
from mcp_trader.policy import signals as rules
from mcp_trader.policy.limits import RiskLimits
from mcp_trader.policy.rules import Policy

SPEC = make_spec("1h")
SHORTEST = SPEC.bars[SPEC.shortest]
CUTOFFS = (900, 1500, 2400)  # bars of the 3000-bar panel
DECIDED = ("asset", "side", "quantity", "decision_bar", "stop_price", "strength")


def confluence_signals(panel, table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rule as run_backtest applies it: the score, its expected move, and the cost gate."""
    score = confluence_score(panel, table)
    signal = rules.from_confluence(score, 0.4)
    expected = edge.expected_from_score(score, edge.barrier_width(panel.close, 24, 1.0, SHORTEST))
    signal, strength, fraction, _ = edge.gate(signal, expected, DEFAULT_MARGIN, Costs(), RiskLimits(), 10_000.0,
                                              panel.close, atr(panel), panel.volume)
    return signal, strength, fraction


def backtest(frames: dict[str, pd.DataFrame]) -> Simulation:
    panel = align(frames, "1h")
    table = builder.build(panel, SPEC, "BTC/USDT").frame
    signal, strength, fraction = confluence_signals(panel, table)
    funding = np.zeros(panel.shape)
    funding[::8] = 0.0001
    return simulate(panel.open, panel.high, panel.low, panel.close, panel.volume, signal, strength, atr(panel),
                    funding, 10_000.0, Policy(max_hold_bars=24, min_hold_bars=SHORTEST), Costs(), fraction,
                    utc_days(panel.index))


def decided_by(sim: Simulation, t: int) -> dict[str, np.ndarray]:
    """Entries decided at or before t (fields fixed at the decision), and exits decided at or before t."""
    entered = sim.trade("decision_bar") <= t
    fields = {name: sim.trade(name)[entered] for name in DECIDED if name != "stop_price"}
    exits = entered & (sim.trade("exit_bar") <= t)
    fields["exits"] = np.stack([sim.trade(n)[exits] for n in ("exit_bar", "exit_reason", "exit_price", "pnl")])
    return fields


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return sample_frames(late={"SOL": 400}, gaps={"DOGE": slice(1500, 1540)})


def test_trades_decided_by_t_ignore_candles_after_t(frames):
    original = backtest(frames)
    grid = align(frames, "1h").index
    rng = np.random.default_rng(1)
    for t in CUTOFFS:
        assert (original.trade("decision_bar") <= t).sum() >= 10, t  # enough trades for the check to mean something
        changed = backtest(perturb_after(frames, grid[t], rng))
        assert len(changed.trades) and not np.array_equal(changed.equity, original.equity)  # the future did change
        before, after = decided_by(original, t), decided_by(changed, t)
        for name, values in before.items():
            assert np.array_equal(values, after[name], equal_nan=True), (t, name)
        assert np.array_equal(original.equity[: t + 1], changed.equity[: t + 1]), t


def test_the_engine_ignores_signals_after_t(frames):
    """The engine alone: scrambling every signal after t leaves all that was decided by t alone."""
    panel = align(frames, "1h")
    table = builder.build(panel, SPEC, "BTC/USDT").frame
    signal, strength, _ = confluence_signals(panel, table)
    rng = np.random.default_rng(2)

    def run(sig: np.ndarray, strg: np.ndarray) -> Simulation:
        return simulate(panel.open, panel.high, panel.low, panel.close, panel.volume, sig, strg, atr(panel),
                        np.zeros(panel.shape), 10_000.0, Policy(max_hold_bars=24), Costs(), day=utc_days(panel.index))

    original = run(signal, strength)
    for t in CUTOFFS:
        sig, strg = signal.copy(), strength.copy()
        sig[t + 1:] = rng.choice(np.array([-1, 0, 1], np.int8), sig[t + 1:].shape)
        strg[t + 1:] = rng.random(strg[t + 1:].shape)
        changed = run(sig, strg)
        for name, values in decided_by(original, t).items():
            assert np.array_equal(values, decided_by(changed, t)[name], equal_nan=True), (t, name)
