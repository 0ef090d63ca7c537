"""Backtest engine: small hand-computed cases (a few bars, one or two trades, every number worked out by hand
below from the fill rules in engine.py), then accounting invariants on a larger random run.

Defaults of the hand cases: capital 10,000, ATR 1 at every bar, stop 2 ATR (so 50 units: 1 % of 10,000 over
a 2-point stop), fixed slippage 2 bps, taker fee 5 bps, maker fee 1 bp, no impact, no take-profit.
"""

import math

import numpy as np
import pandas as pd
import pytest

from mcp_trader.backtest.engine import EXIT_REASONS, Simulation, simulate
from mcp_trader.backtest.params import Costs, Risk
from mcp_trader.policy.limits import RiskLimits

CAPITAL = 10_000.0
COSTS = Costs(maker_fee=0.0001, taker_fee=0.0005, slippage_bps=2.0, impact=0.0, funding=True)
RISK = Risk(risk_per_trade=0.01, stop_atr=2.0, take_profit_atr=0.0, max_positions=5, max_leverage=3.0)
LONG_ONLY = RISK.model_copy(update={"allow_short": False})
GAP = (math.nan,) * 4
NO_CAP = RiskLimits(max_order_notional=1e12)  # the hand cases' orders are not cut by the notional limit

Bar = tuple[float, float, float, float]  # open, high, low, close

# A gentle rise that stays clear of a 2-point stop either way of a fill at bar 1's open (until bar 3's open).
RISING: list[Bar] = [(100, 101, 99, 100), (101, 102, 100.5, 101.5), (102, 102.5, 101, 102), (103, 104, 102, 103),
                     (104, 105, 103, 104)]


def column(values, bars: int, assets: int) -> np.ndarray:
    """A scalar, one asset's list, or a (bars, assets) nested list as a float array of shape (bars, assets)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    return np.broadcast_to(array, (bars, assets)).copy()


def run(rows: list[Bar] | list[list[Bar]], signal, *, atr=1.0, strength=0.5, funding=0.0, volume=1e9,
        risk: Risk = RISK, costs: Costs = COSTS, max_hold: int = 0, fraction=1.0, min_hold: int = 0,
        day: np.ndarray | None = None) -> Simulation:
    """Simulate candles given as one asset's (open, high, low, close) rows, or a list of such lists, one per asset."""
    per_asset = [rows] if not isinstance(rows[0], list) else rows
    ohlc = np.asarray(per_asset, dtype=np.float64).transpose(1, 0, 2)  # (bars, assets, 4)
    bars, assets = ohlc.shape[:2]
    vol = np.where(np.isnan(ohlc[..., 3]), np.nan, column(volume, bars, assets))
    return simulate(
        ohlc[..., 0], ohlc[..., 1], ohlc[..., 2], ohlc[..., 3], vol, column(signal, bars, assets).astype(np.int8),
        column(strength, bars, assets), column(atr, bars, assets), column(funding, bars, assets), CAPITAL,
        risk.policy(NO_CAP, max_hold, min_hold), costs, column(fraction, bars, assets), day,
    )


def trade(sim: Simulation, i: int = 0) -> dict[str, float]:
    """One trade row as a dict, the exit reason as its name."""
    out = {name: float(sim.trade(name)[i]) for name in ("asset", "side", "quantity", "decision_bar", "entry_bar",
           "entry_price", "exit_decision_bar", "exit_bar", "exit_price", "fees", "slippage", "funding", "pnl",
           "stop_price", "take_profit_price", "strength", "entry_reference", "exit_reference")}
    out["reason"] = EXIT_REASONS[int(sim.trade("exit_reason")[i])]
    return out


# ------------------------------------------------------------------------------ market fills and exits


def test_the_size_fraction_scales_the_risk_based_size() -> None:
    """The cost gate's fraction of the decision bar scales the entry: 0.4 × 50 units = 20."""
    sim = run(RISING, [1, 0, -1, 0, 0], risk=LONG_ONLY, fraction=[0.4, 1.0, 1.0, 1.0, 1.0])
    assert trade(sim)["quantity"] == pytest.approx(0.4 * 0.01 * 10_000 / 2, rel=1e-12)


FLAT: list[Bar] = [(100, 100.5, 99.5, 100)] * 12


def test_the_minimum_holding_time_holds_through_opposite_signals() -> None:
    """Long at bar 1 (decided at 0); SELL at every close from bar 1 on: without a minimum the position flips at
    bar 2; with min_hold 4 it is held until the close of bar 4 (4 bars held), then reversed."""
    flips = [1] + [-1] * 11
    assert trade(run(FLAT, flips))["exit_decision_bar"] == 1
    held = run(FLAT, flips, min_hold=4)
    first, second = trade(held, 0), trade(held, 1)
    assert (first["entry_bar"], first["exit_decision_bar"], first["reason"]) == (1, 4, "signal")
    assert (second["side"], second["decision_bar"]) == (-1, 4)


def test_an_asset_is_entered_at_most_once_per_minimum_holding_time() -> None:
    """A BUY at every close and a take-profit hit on every bar: without a minimum the engine re-enters after each
    exit; with min_hold 5 an entry is decided at bars 0, 5 and 10 only."""
    risk = LONG_ONLY.model_copy(update={"take_profit_atr": 0.2})
    churn = run(FLAT, [1] * 12, risk=risk)
    calm = run(FLAT, [1] * 12, risk=risk, min_hold=5)
    assert len(churn.trades) >= 9
    assert calm.trade("decision_bar").tolist() == [0, 5, 10]


def test_long_fills_at_next_open_with_slippage_and_taker_fee_and_exits_on_opposite_signal() -> None:
    sim = run(RISING, [1, 0, -1, 0, 0], risk=LONG_ONLY)
    assert len(sim.trades) == 1
    t = trade(sim)
    qty = 0.01 * 10_000 / (2 * 1.0)  # 50
    entry = 101 * (1 + 0.0002)
    exit_ = 103 * (1 - 0.0002)
    fees = qty * entry * 0.0005 + qty * exit_ * 0.0005
    pnl = qty * (exit_ - entry) - fees
    assert t["side"] == 1 and t["quantity"] == pytest.approx(qty, rel=1e-12)
    assert (t["decision_bar"], t["entry_bar"], t["exit_decision_bar"], t["exit_bar"]) == (0, 1, 2, 3)
    assert t["entry_price"] == pytest.approx(entry, rel=1e-12)
    assert t["exit_price"] == pytest.approx(exit_, rel=1e-12)
    assert (t["entry_reference"], t["exit_reference"]) == (101, 103)
    assert t["fees"] == pytest.approx(fees, rel=1e-12)
    assert t["slippage"] == pytest.approx(qty * 101 * 0.0002 + qty * 103 * 0.0002, rel=1e-12)
    assert t["pnl"] == pytest.approx(pnl, rel=1e-12)
    assert t["reason"] == "signal"
    assert t["stop_price"] == pytest.approx(entry - 2 * 1.0, rel=1e-12) and math.isnan(t["take_profit_price"])
    cash_held = 10_000 - qty * entry - qty * entry * 0.0005
    expected = [10_000, cash_held + qty * 101.5, cash_held + qty * 102, 10_000 + pnl, 10_000 + pnl]
    np.testing.assert_allclose(sim.equity, expected, rtol=1e-12)
    np.testing.assert_allclose(sim.positions[:, 0], [0, qty, qty, 0, 0])
    np.testing.assert_array_equal(sim.open_positions, [0, 1, 1, 0, 0])
    np.testing.assert_allclose(sim.gross, [0, qty * 101.5, qty * 102, 0, 0], rtol=1e-12)


def test_short_sells_below_the_open_and_reverses_into_a_long_at_the_same_open() -> None:
    sim = run(RISING, [-1, 0, 1, 0, 0])
    assert len(sim.trades) == 2
    short, long_ = trade(sim, 0), trade(sim, 1)
    entry = 101 * (1 - 0.0002)
    exit_ = 103 * (1 + 0.0002)
    fees = 50 * entry * 0.0005 + 50 * exit_ * 0.0005
    short_pnl = -50 * (exit_ - entry) - fees
    assert short["side"] == -1 and short["quantity"] == pytest.approx(50, rel=1e-12)
    assert short["entry_price"] == pytest.approx(entry, rel=1e-12)
    assert short["exit_price"] == pytest.approx(exit_, rel=1e-12)
    assert short["stop_price"] == pytest.approx(entry + 2, rel=1e-12)
    assert short["pnl"] == pytest.approx(short_pnl, rel=1e-12)
    assert (short["exit_bar"], short["reason"]) == (3, "signal")
    # The long is sized at bar 2's close on the equity then, with the short still marked at 102.
    equity_2 = 10_000 + 50 * entry - 50 * entry * 0.0005 - 50 * 102
    assert sim.equity[2] == pytest.approx(equity_2, rel=1e-12)
    qty = 0.01 * equity_2 / 2
    long_entry = 103 * (1 + 0.0002)
    long_exit = 104 * (1 - 0.0002)  # closed at the last close
    long_pnl = qty * (long_exit - long_entry) - qty * long_entry * 0.0005 - qty * long_exit * 0.0005
    assert (long_["side"], long_["decision_bar"], long_["entry_bar"], long_["exit_bar"]) == (1, 2, 3, 4)
    assert long_["quantity"] == pytest.approx(qty, rel=1e-12)
    assert long_["entry_price"] == pytest.approx(long_entry, rel=1e-12)
    assert long_["pnl"] == pytest.approx(long_pnl, rel=1e-12)
    assert long_["reason"] == "end"
    assert sim.equity[-1] == pytest.approx(10_000 + short_pnl + long_pnl, rel=1e-12)
    np.testing.assert_allclose(sim.positions[:, 0], [0, -50, -50, qty, 0], rtol=1e-12)


def test_open_position_closes_at_the_last_close_with_slippage_and_taker_fee() -> None:
    sim = run(RISING[:3], [1, 0, 0])
    t = trade(sim)
    entry = 101 * (1 + 0.0002)
    exit_ = 102 * (1 - 0.0002)
    pnl = 50 * (exit_ - entry) - 50 * entry * 0.0005 - 50 * exit_ * 0.0005
    assert (t["reason"], t["exit_decision_bar"], t["exit_bar"], t["exit_reference"]) == ("end", 2, 2, 102)
    assert t["exit_price"] == pytest.approx(exit_, rel=1e-12)
    assert t["pnl"] == pytest.approx(pnl, rel=1e-12)
    assert sim.equity[-1] == pytest.approx(10_000 + pnl, rel=1e-12)
    assert sim.cash[-1] == sim.equity[-1] and sim.positions[-1, 0] == 0 and sim.open_positions[-1] == 0


# ------------------------------------------------------------------------------ stops and take-profits


def test_stop_fills_at_its_level_less_slippage_at_taker_fee() -> None:
    rows = [*RISING[:2], (100, 100.5, 98.5, 99), (99, 100, 98, 99.5)]
    sim = run(rows, [1, 0, 0, 0])
    t = trade(sim)
    entry = 101 * (1 + 0.0002)
    stop = entry - 2  # 99.0202, inside bar 2's range (low 98.5), below its open 100
    exit_ = stop * (1 - 0.0002)
    assert (t["reason"], t["exit_bar"], t["exit_reference"]) == ("stop", 2, pytest.approx(stop, rel=1e-12))
    assert t["exit_price"] == pytest.approx(exit_, rel=1e-12)
    assert t["fees"] == pytest.approx(50 * entry * 0.0005 + 50 * exit_ * 0.0005, rel=1e-12)
    assert t["pnl"] == pytest.approx(50 * (exit_ - entry) - 50 * entry * 0.0005 - 50 * exit_ * 0.0005, rel=1e-12)
    assert sim.equity[-1] == pytest.approx(10_000 + t["pnl"], rel=1e-12)
    assert len(sim.trades) == 1 and sim.positions[2, 0] == 0


def test_long_stop_gapped_through_fills_at_the_open() -> None:
    rows = [*RISING[:2], (98, 98.5, 97, 98), (98, 99, 97.5, 98)]
    t = trade(run(rows, [1, 0, 0, 0]))
    assert (t["reason"], t["exit_bar"], t["exit_reference"]) == ("stop", 2, 98)  # min(open 98, stop 99.0202)
    assert t["exit_price"] == pytest.approx(98 * (1 - 0.0002), rel=1e-12)


def test_short_stop_gapped_through_fills_at_the_open() -> None:
    rows = [*RISING[:2], (104, 104.5, 103.5, 104), (104, 105, 103, 104)]
    t = trade(run(rows, [-1, 0, 0, 0]))
    assert t["stop_price"] == pytest.approx(101 * (1 - 0.0002) + 2, rel=1e-12)  # 102.9798
    assert (t["reason"], t["exit_bar"], t["exit_reference"]) == ("stop", 2, 104)  # max(open 104, stop)
    assert t["exit_price"] == pytest.approx(104 * (1 + 0.0002), rel=1e-12)


def test_stop_can_trigger_on_the_entry_bar() -> None:
    rows = [RISING[0], (101, 101.5, 98.9, 99.5), RISING[2]]
    t = trade(run(rows, [1, 0, 0]))
    assert (t["reason"], t["entry_bar"], t["exit_bar"]) == ("stop", 1, 1)
    assert t["exit_price"] == pytest.approx((101 * (1 + 0.0002) - 2) * (1 - 0.0002), rel=1e-12)


def test_take_profit_fills_at_its_level_at_maker_fee_without_slippage() -> None:
    rows = [*RISING[:2], (102, 104.5, 101.5, 104), (104, 105, 103, 104)]
    sim = run(rows, [1, 0, 0, 0], risk=RISK.model_copy(update={"take_profit_atr": 3.0}))
    t = trade(sim)
    entry = 101 * (1 + 0.0002)
    target = entry + 3 * 1.0  # 104.0202, reached by bar 2's high 104.5
    assert t["take_profit_price"] == pytest.approx(target, rel=1e-12)
    assert (t["reason"], t["exit_bar"]) == ("take_profit", 2)
    assert t["exit_price"] == pytest.approx(target, rel=1e-12)
    assert t["fees"] == pytest.approx(50 * entry * 0.0005 + 50 * target * 0.0001, rel=1e-12)
    assert t["slippage"] == pytest.approx(50 * 101 * 0.0002, rel=1e-12)  # the entry's only
    assert t["pnl"] == pytest.approx(50 * (target - entry) - 50 * entry * 0.0005 - 50 * target * 0.0001, rel=1e-12)


def test_take_profit_gapped_beyond_fills_at_the_better_open() -> None:
    rows = [*RISING[:2], (105, 106, 104.5, 105.5), (105, 106, 104, 105)]
    t = trade(run(rows, [1, 0, 0, 0], risk=RISK.model_copy(update={"take_profit_atr": 3.0})))
    assert (t["reason"], t["exit_bar"]) == ("take_profit", 2)
    assert t["exit_price"] == 105  # max(open 105, target 104.0202)
    assert t["fees"] == pytest.approx(50 * 101 * (1 + 0.0002) * 0.0005 + 50 * 105 * 0.0001, rel=1e-12)


def test_bar_reaching_both_stop_and_take_profit_takes_the_stop() -> None:
    rows = [*RISING[:2], (102, 104.5, 98.5, 103), (103, 104, 102, 103)]
    t = trade(run(rows, [1, 0, 0, 0], risk=RISK.model_copy(update={"take_profit_atr": 3.0})))
    assert (t["reason"], t["exit_bar"]) == ("stop", 2)
    assert t["exit_price"] == pytest.approx((101 * (1 + 0.0002) - 2) * (1 - 0.0002), rel=1e-12)


# ------------------------------------------------------------------------------ sizing and the leverage cap


def test_size_is_risk_times_equity_over_the_stop_distance_at_the_decision_bar() -> None:
    atr = [2.5, 1.0, 1.0, 1.0]  # only the decision bar's ATR counts
    rows = [(100, 101, 99, 100), (101, 102, 100.5, 101.5), (102, 103, 101, 102), (103, 104, 102, 103)]
    t = trade(run(rows, [1, 0, 0, 0], atr=atr, risk=RISK.model_copy(update={"take_profit_atr": 3.0})))
    entry = 101 * (1 + 0.0002)
    assert t["quantity"] == pytest.approx(0.01 * 10_000 / (2 * 2.5), rel=1e-12)  # 20
    assert t["stop_price"] == pytest.approx(entry - 2 * 2.5, rel=1e-12)
    assert t["take_profit_price"] == pytest.approx(entry + 3 * 2.5, rel=1e-12)


def test_leverage_cap_cuts_an_oversized_entry() -> None:
    risk = RISK.model_copy(update={"risk_per_trade": 0.05, "stop_atr": 1.0})  # 500 units: 50,000 at 100
    t = trade(run(RISING, [1, 0, 0, 0, 0], risk=risk))
    assert t["quantity"] == pytest.approx(3 * 10_000 / 100, rel=1e-12)  # 300: 3 × equity at the decision close


def test_an_entry_is_cut_to_the_order_notional_limit_the_guard_enforces() -> None:
    capped = RISK.model_copy(update={"max_order_notional": 2_000.0})  # the risk size is 50 units: 5,000 at 100
    t = trade(run(RISING, [1, 0, 0, 0, 0], risk=capped))
    assert t["quantity"] == pytest.approx(2_000 / 100, rel=1e-12)  # sized at the decision close, as the loop does
    assert trade(run(RISING, [1, 0, 0, 0, 0]))["quantity"] == pytest.approx(50, rel=1e-12)


def test_the_daily_loss_stop_halts_entries_until_the_next_utc_day() -> None:
    """A 10 % risk entry is stopped out on bar 1 (a loss of about 6 % of the day's starting equity, over the 5 %
    limit): the standing BUY signal enters again only on the next day (bar 4), where without a calendar it
    re-enters at bar 1's close."""
    rows = [(100, 101, 99, 100), (100, 100.5, 97, 98), (98, 98.5, 97.5, 98), (98, 98.5, 97.5, 98),
            (98, 98.5, 97.5, 98), (98, 98.5, 97.5, 98)]
    risky = RISK.model_copy(update={"risk_per_trade": 0.1, "daily_loss_limit": 0.05})  # 300 units (leverage cap)
    days = np.array([20240101] * 4 + [20240102] * 2)
    halted = run(rows, [1] * 6, risk=risky, day=days)
    first = trade(halted, 0)
    assert first["reason"] == "stop" and first["pnl"] < -0.05 * CAPITAL
    assert [trade(halted, i)["decision_bar"] for i in range(len(halted.trades))] == [0, 4]
    free = run(rows, [1] * 6, risk=risky)  # no calendar: no daily stop
    assert [trade(free, i)["decision_bar"] for i in range(len(free.trades))] == [0, 1]
    mild = run(rows, [1] * 6, risk=risky.model_copy(update={"daily_loss_limit": 0.2}), day=days)
    assert [trade(mild, i)["decision_bar"] for i in range(len(mild.trades))] == [0, 1]


def test_leverage_cap_gives_the_weaker_of_two_entries_what_is_left() -> None:
    a = RISING
    b = [(50, 50.2, 49.8, 50)] * 5
    risk = RISK.model_copy(update={"max_leverage": 1.0})
    strength = [[0.9, 0.1]] * 5
    atr = [[1.0, 0.25]] * 5  # b wants 0.01 × 10,000 / 0.5 = 200 units = 10,000 at 50
    sim = run([a, b], [[1, 1], [0, 0], [0, 0], [0, 0], [0, 0]], atr=atr, strength=strength, risk=risk)
    qty = dict(zip(sim.trade("asset"), sim.trade("quantity"), strict=True))
    assert qty[0] == pytest.approx(50, rel=1e-12)  # 5,000 at 100
    assert qty[1] == pytest.approx((1.0 * 10_000 - 50 * 100) / 50, rel=1e-12)  # 100: the 5,000 left
    swapped = run([a, b], [[1, 1], [0, 0], [0, 0], [0, 0], [0, 0]], atr=atr, strength=[[0.1, 0.9]] * 5, risk=risk)
    assert list(swapped.trade("asset")) == [1]  # b takes all 10,000 of room first; nothing left for a
    assert swapped.trade("quantity")[0] == pytest.approx(200, rel=1e-12)


def test_leverage_cap_counts_a_staying_position_at_its_last_close() -> None:
    a = RISING
    b = [(50, 50.2, 49.8, 50)] * 5
    signal = [[1, 0], [0, 0], [0, 1], [0, 0], [0, 0]]
    sim = run([a, b], signal, atr=[[1.0, 0.25]] * 5, risk=RISK.model_copy(update={"max_leverage": 1.0}))
    entry_a = 101 * (1 + 0.0002)
    equity_2 = 10_000 - 50 * entry_a - 50 * entry_a * 0.0005 + 50 * 102
    wanted = 0.01 * equity_2 / (2 * 0.25)  # ≈ 199.9: ≈ 9,996 at 50
    room = 1.0 * equity_2 - 50 * 102
    assert wanted * 50 > room
    b_trade = trade(sim, 1)
    assert (b_trade["asset"], b_trade["decision_bar"]) == (1, 2)
    assert b_trade["quantity"] == pytest.approx(room / 50, rel=1e-12)


# ------------------------------------------------------------------------------ impact


def test_impact_adds_volatility_times_sqrt_participation_capped_at_one() -> None:
    volume = [202, 1000, 1, 1000, 1000]
    costs = COSTS.model_copy(update={"impact": 0.5})
    t = trade(run(RISING, [1, 0, -1, 0, 0], volume=volume, costs=costs, risk=LONG_ONLY))
    # Entry at bar 1's open 101: volatility ATR / close = 1 / 100 at bar 0, participation 50 × 101 / (100 × 202)
    entry = 101 * (1 + 0.0002 + 0.5 * (1 / 100) * math.sqrt(50 * 101 / (100 * 202)))  # √0.25 = 0.5
    assert entry == pytest.approx(101 * 1.0027, rel=1e-12)
    # Exit at bar 3's open 103: bar 2 traded 1 unit at 102, so participation 50 × 103 / 102 caps at 1
    exit_ = 103 * (1 - (0.0002 + 0.5 * (1 / 102) * 1))
    assert t["entry_price"] == pytest.approx(entry, rel=1e-12)
    assert t["exit_price"] == pytest.approx(exit_, rel=1e-12)
    assert t["slippage"] == pytest.approx(50 * (entry - 101) + 50 * (103 - exit_), rel=1e-12)
    assert t["pnl"] == pytest.approx(50 * (exit_ - entry) - 50 * entry * 0.0005 - 50 * exit_ * 0.0005, rel=1e-12)


# ------------------------------------------------------------------------------ funding


FUNDING = [0.0, 0.001, 0.0002, 0.0003, 0.0004]  # bar 1: the entry bar; bar 3: the exit bar (held at its open)


def test_funding_is_charged_on_a_long_held_at_the_open() -> None:
    sim = run(RISING, [1, 0, 0, 0, 0], funding=FUNDING, max_hold=2)
    t = trade(sim)
    paid = 50 * 102 * 0.0002 + 50 * 103 * 0.0003  # not bar 1 (bought after its settlement), not bar 4 (flat)
    entry, exit_ = 101 * (1 + 0.0002), 103 * (1 - 0.0002)
    assert (t["reason"], t["exit_bar"]) == ("time", 3)
    assert t["funding"] == pytest.approx(-paid, rel=1e-12)
    assert t["pnl"] == pytest.approx(50 * (exit_ - entry) - 50 * entry * 0.0005 - 50 * exit_ * 0.0005 - paid,
                                     rel=1e-12)
    cash_1 = 10_000 - 50 * entry - 50 * entry * 0.0005
    assert sim.equity[2] == pytest.approx(cash_1 - 50 * 102 * 0.0002 + 50 * 102, rel=1e-12)
    assert sim.equity[-1] == pytest.approx(10_000 + t["pnl"], rel=1e-12)


def test_funding_is_received_on_a_short() -> None:
    sim = run(RISING, [-1, 0, 0, 0, 0], funding=FUNDING, max_hold=2)
    t = trade(sim)
    received = 50 * 102 * 0.0002 + 50 * 103 * 0.0003
    entry, exit_ = 101 * (1 - 0.0002), 103 * (1 + 0.0002)
    assert t["funding"] == pytest.approx(received, rel=1e-12)
    assert t["pnl"] == pytest.approx(-50 * (exit_ - entry) - 50 * entry * 0.0005 - 50 * exit_ * 0.0005 + received,
                                     rel=1e-12)
    assert sim.equity[-1] == pytest.approx(10_000 + t["pnl"], rel=1e-12)


def test_funding_off_charges_nothing() -> None:
    sim = run(RISING, [1, 0, 0, 0, 0], funding=FUNDING, max_hold=2, costs=COSTS.model_copy(update={"funding": False}))
    assert trade(sim)["funding"] == 0


# ------------------------------------------------------------------------------ slots, holding limit, gaps


def test_max_positions_lets_the_strongest_signals_in() -> None:
    signal = [[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]]
    strength = [[0.2, 0.9, 0.5]] * 5
    sim = run([RISING] * 3, signal, strength=strength, risk=RISK.model_copy(update={"max_positions": 2}))
    assert sorted(sim.trade("asset")) == [1, 2]  # asset 0, the weakest, gets no slot; nor at bar 2 (both held)
    np.testing.assert_allclose(sorted(sim.trade("strength")), [0.5, 0.9])
    np.testing.assert_allclose(sim.trade("quantity"), [50, 50], rtol=1e-12)  # both sized on the same 10,000
    assert sim.open_positions.max() == 2


def test_max_hold_bars_exits_after_that_many_closes_and_a_standing_signal_re_enters() -> None:
    rows = [*RISING, (104, 105, 103, 104.5)]
    sim = run(rows, [1] * 6, max_hold=2)
    assert len(sim.trades) == 2
    first, second = trade(sim, 0), trade(sim, 1)
    assert (first["entry_bar"], first["exit_decision_bar"], first["exit_bar"], first["reason"]) == (1, 2, 3, "time")
    assert first["exit_price"] == pytest.approx(103 * (1 - 0.0002), rel=1e-12)
    # flat at bar 3's close with the signal still on: enters again at bar 4's open
    assert (second["decision_bar"], second["entry_bar"], second["exit_bar"], second["reason"]) == (3, 4, 5, "end")
    np.testing.assert_array_equal(sim.open_positions, [0, 1, 1, 0, 1, 0])


def test_missing_candle_drops_a_pending_entry() -> None:
    rows = [RISING[0], GAP, RISING[2], RISING[3]]
    sim = run(rows, [1, 0, 0, 0])
    assert len(sim.trades) == 0
    np.testing.assert_allclose(sim.equity, 10_000)


def test_missing_candle_of_one_asset_leaves_the_other_entry() -> None:
    sim = run([[RISING[0], GAP, *RISING[2:4]], RISING[:4]], [[1, 1], [0, 0], [0, 0], [0, 0]])
    assert list(sim.trade("asset")) == [1]
    assert trade(sim)["entry_price"] == pytest.approx(101 * (1 + 0.0002), rel=1e-12)


def test_exit_waits_for_the_assets_next_candle() -> None:
    rows = [*RISING[:3], GAP, (103.5, 104, 103, 103.5), (104, 105, 103, 104)]
    sim = run(rows, [1, 0, -1, 0, 0, 0], risk=LONG_ONLY)
    t = trade(sim)
    assert (t["exit_decision_bar"], t["exit_bar"], t["reason"]) == (2, 4, "signal")
    assert t["exit_price"] == pytest.approx(103.5 * (1 - 0.0002), rel=1e-12)
    assert sim.equity[3] == pytest.approx(sim.equity[2], rel=1e-12)  # marked at bar 2's close through the gap
    assert sim.positions[3, 0] == pytest.approx(50, rel=1e-12)


# ------------------------------------------------------------------------------ invariants on a random run


BARS, ASSETS = 2000, 4
RANDOM_RISK = Risk(risk_per_trade=0.02, stop_atr=2.0, take_profit_atr=3.0, max_positions=2, max_leverage=1.5)


@pytest.fixture(scope="module")
def random_run() -> tuple[dict[str, np.ndarray], Simulation]:
    """Random walks for four assets, asset 2 with a long gap and scattered missing candles, random signals and
    strengths, funding every eighth bar, default costs (impact on), a 24-bar holding limit."""
    rng = np.random.default_rng(7)
    shape = (BARS, ASSETS)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, shape), axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.003, shape))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, shape))
    volume = rng.uniform(1e3, 1e5, shape)
    missing = np.zeros(shape, dtype=bool)
    missing[300:360, 2] = True
    missing[rng.random(BARS) < 0.03, 2] = True
    for a in (open_, high, low, close, volume):
        a[missing] = np.nan
    atr = 0.012 * close
    signal = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=shape, p=[0.04, 0.92, 0.04])
    signal[missing] = 0
    strength = rng.uniform(0, 1, shape)
    funding = np.where(np.arange(BARS)[:, None] % 8 == 0, rng.normal(0, 2e-4, shape), 0.0)
    market = {"open": open_, "close": close, "missing": missing}
    sim = simulate(open_, high, low, close, volume, signal, strength, atr, funding, CAPITAL,
                   RANDOM_RISK.policy(NO_CAP, 24, 0), Costs())
    return market, sim


def test_random_run_exercises_every_exit_and_the_gap(random_run) -> None:
    market, sim = random_run
    reasons = {EXIT_REASONS[int(r)] for r in sim.trade("exit_reason")}
    assert {"signal", "stop", "take_profit", "time"} <= reasons and "ruin" not in reasons
    assert len(sim.trades) > 100
    held_in_gap = (sim.positions[market["missing"][:, 2], 2] != 0).any()
    assert held_in_gap  # some position of asset 2 is carried through a missing candle


def test_equity_is_cash_plus_positions_at_the_last_known_close(random_run) -> None:
    market, sim = random_run
    marks = pd.DataFrame(market["close"]).ffill().fillna(0.0).to_numpy()
    np.testing.assert_allclose(sim.equity, sim.cash + (sim.positions * marks).sum(axis=1), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sim.gross, (np.abs(sim.positions) * marks).sum(axis=1), rtol=1e-12, atol=1e-9)


def test_trade_pnl_adds_up_to_the_final_equity(random_run) -> None:
    _, sim = random_run
    assert sim.trade("pnl").sum() == pytest.approx(sim.equity[-1] - CAPITAL, rel=1e-9)
    assert sim.positions[-1].tolist() == [0.0] * ASSETS and sim.equity[-1] == sim.cash[-1]


def test_open_positions_never_exceed_the_limit(random_run) -> None:
    _, sim = random_run
    assert sim.open_positions.max() == RANDOM_RISK.max_positions
    np.testing.assert_array_equal(sim.open_positions, np.count_nonzero(sim.positions, axis=1))


def test_every_trade_is_decided_before_it_fills_and_fills_on_a_candle(random_run) -> None:
    market, sim = random_run
    decided, entered, exited = sim.trade("decision_bar"), sim.trade("entry_bar"), sim.trade("exit_bar")
    assert (decided < entered).all() and (entered <= exited).all()
    assets = sim.trade("asset").astype(int)
    assert not np.isnan(market["open"][entered.astype(int), assets]).any()
    reasons = sim.trade("exit_reason")
    by_order = reasons != EXIT_REASONS.index("end")
    assert not np.isnan(market["open"][exited[by_order].astype(int), assets[by_order]]).any()
    signal_or_time = np.isin(reasons, [EXIT_REASONS.index("signal"), EXIT_REASONS.index("time")])
    assert (sim.trade("exit_decision_bar")[signal_or_time] < exited[signal_or_time]).all()


def test_a_gap_that_wipes_out_the_equity_closes_everything_and_stops_trading() -> None:
    """A 10× levered long through a 95 % gap: equity below 0 at the close, the run is closed out, no new trade."""
    from mcp_trader.backtest import metrics

    rows = [(100, 101, 99, 100), (100, 100.5, 99.5, 100), (5, 5.5, 4, 5), (5, 6, 4.5, 5.5), (5.5, 6, 5, 5.8)]
    risk = Risk(risk_per_trade=0.5, stop_atr=5.0, take_profit_atr=0.0, max_positions=1, max_leverage=10.0,
                allow_short=False)  # 0.5 × 10,000 / 5 = 1,000 units: 100,000 notional, the 10× cap
    sim = run(rows, [1, 1, 1, 1, 1], risk=risk)
    assert len(sim.trades) == 1
    t = trade(sim)
    assert t["reason"] == "stop" and t["exit_bar"] == 2 and t["exit_price"] <= 5  # gapped through: filled at the open
    assert t["quantity"] == pytest.approx(1000.0)
    assert sim.equity[2] < -80_000  # 100,000 notional lost 95 %: the account is gone
    assert sim.equity[3] == sim.equity[2] and sim.equity[4] == sim.equity[2]  # nothing traded after it
    headline = metrics.headline(sim.equity, CAPITAL, "1h")
    assert headline.total_return < -1 and headline.max_drawdown > 1 and headline.annual_return is None


def test_ruin_closes_what_is_still_open_and_ends_trading() -> None:
    """Two 10× longs; one gaps 95 % through its stop, the equity goes below 0, the other is closed out ("ruin")."""
    gapping = [(100, 101, 99, 100), (100, 100.5, 99.5, 100), (5, 5.5, 4, 5), (5, 6, 4.5, 5.5), (5.5, 6, 5, 5.8)]
    steady = [(100, 100.5, 99.5, 100)] * 5
    risk = Risk(risk_per_trade=0.5, stop_atr=5.0, take_profit_atr=0.0, max_positions=2, max_leverage=20.0,
                allow_short=False)  # 1,000 units each: 100,000 notional each, 200,000 = the 20× cap
    sim = run([gapping, steady], [[1, 1]] * 5, strength=[[0.9, 0.5]] * 5, risk=risk)
    assert len(sim.trades) == 2
    stopped, closed = trade(sim, 0), trade(sim, 1)
    assert (stopped["asset"], stopped["reason"], stopped["exit_bar"]) == (0, "stop", 2)
    assert (closed["asset"], closed["reason"], closed["exit_bar"]) == (1, "ruin", 2)
    assert sim.equity[2] < 0 and (sim.equity[3:] == sim.equity[2]).all() and (sim.open_positions[2:] == 0).all()
    assert sim.trade("pnl").sum() == pytest.approx(sim.equity[-1] - CAPITAL, rel=1e-12)
