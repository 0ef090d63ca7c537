"""The cost gate: expected moves from probabilities and barrier widths, the round trip the engine pays, and which
signals pass, with their size fractions, worked out by hand."""

import math

import numpy as np
import pytest

from mcp_trader.backtest import edge
from mcp_trader.backtest.params import Costs
from mcp_trader.policy.limits import RiskLimits

COSTS = Costs(taker_fee=0.0005, slippage_bps=2.0, impact=0.5)


def test_the_barrier_width_is_sigma_root_horizon_known_at_the_bar():
    close = 100 * np.exp(np.cumsum(np.tile([0.01, -0.01], 50)))[:, None]  # log returns ±1 %: σ = 1 %
    width = edge.barrier_width(close, horizon=16, barrier=1.5, window=10)
    assert np.isnan(width[:2, 0]).all()  # no σ before there are returns to measure it on
    assert width[20, 0] == pytest.approx(1.5 * 0.01 * 4, rel=1e-9)
    changed = close.copy()
    changed[60:] *= 1.3
    assert np.array_equal(edge.barrier_width(changed, 16, 1.5, 10)[:60], width[:60], equal_nan=True)


def test_expected_moves_from_probabilities_and_scores():
    proba = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [np.nan] * 3])  # SELL, HOLD, BUY
    width = np.array([0.04, 0.02, 0.03])
    assert edge.expected_from_probabilities(proba, width)[:2] == pytest.approx([0.3 * 0.04, -0.5 * 0.02])
    assert np.isnan(edge.expected_from_probabilities(proba, width)[2])
    assert edge.expected_from_score(np.array([0.5, -0.8]), np.array([0.02, 0.02])) == pytest.approx([0.01, -0.016])


def test_the_round_trip_is_two_fees_two_slippages_and_the_impact_of_the_risk_sized_order():
    risk = RiskLimits(risk_per_trade=0.01, stop_atr=2.0, max_leverage=3.0, max_order_notional=1e9)
    close, atr, volume = np.array([100.0]), np.array([1.0]), np.array([1_000.0])  # dollar volume 100,000
    notional = 0.01 * 10_000 / (2 * 0.01)  # 5,000: 1 % of equity over a 2 % stop
    impact = 0.5 * 0.01 * math.sqrt(notional / 100_000)
    expected = 2 * (0.0005 + 0.0002 + impact)
    assert edge.round_trip_cost(COSTS, risk, 10_000, close, atr, volume)[0] == pytest.approx(expected)
    tiny = edge.round_trip_cost(COSTS, risk, 10_000, close, np.array([0.001]), volume)[0]  # capped at 3× equity
    capped = 0.5 * 0.00001 * math.sqrt(min(30_000 / 100_000, 1))
    assert tiny == pytest.approx(2 * (0.0007 + capped))
    limited = risk.model_copy(update={"max_order_notional": 2_000.0})  # the order the policy sends: 2,000 at most
    small = edge.round_trip_cost(COSTS, limited, 10_000, close, atr, volume)[0]
    assert small == pytest.approx(2 * (0.0007 + 0.5 * 0.01 * math.sqrt(2_000 / 100_000)))


def test_the_gate_keeps_signals_that_pay_the_margin_in_their_own_direction():
    signal = np.array([1, 1, -1, -1, 1, 0, 1], np.int8)
    expected = np.array([0.010, 0.002, -0.009, 0.010, np.nan, 0.05, 0.003])
    cost = np.full(7, 0.002)
    gated, strength, fraction = edge.cost_gate(signal, expected, cost, margin=0.5)
    assert gated.tolist() == [1, 0, -1, 0, 0, 0, 1]  # 0.002 < 1.5 × cost; a SELL expecting a rise; no estimate
    assert strength == pytest.approx([0.008, 0, 0.007, 0, 0, 0, 0.001])
    assert fraction == pytest.approx([0.8, 0, 7 / 9, 0, 0, 0, 1 / 3])
    assert edge.cost_gate(signal, expected, cost, margin=2.0)[0].tolist() == [1, 0, -1, 0, 0, 0, 0]


def test_a_validated_edge_keeps_its_scale_and_noise_gets_none():
    from mcp_trader.models.edge import edge_scale

    rng = np.random.default_rng(5)
    implied = rng.normal(0, 0.01, 20_000)
    calibrated = edge_scale(implied, implied + rng.normal(0, 0.02, 20_000), horizon=1)
    assert calibrated.slope == pytest.approx(1.0, abs=0.1) and 0.8 < calibrated.scale < calibrated.slope
    noise = [edge_scale(implied, rng.normal(0, 0.02, 20_000), horizon=24).scale for _ in range(20)]
    assert sum(s > 0 for s in noise) <= 2  # a one-sided 95 % bound: about one noise model in 20 passes
    wrong_way = edge_scale(implied, -implied + rng.normal(0, 0.02, 20_000), horizon=1)
    assert wrong_way.slope < 0 and wrong_way.scale == 0.0
    assert edge_scale(implied[:50], implied[:50], horizon=1).scale == 0.0  # too few rows to say


def test_overlapping_forward_returns_widen_the_standard_error():
    from mcp_trader.models.edge import edge_scale

    rng = np.random.default_rng(6)
    implied, forward = rng.normal(0, 0.01, 5000), rng.normal(0, 0.02, 5000)
    one, day = edge_scale(implied, forward, horizon=1), edge_scale(implied, forward, horizon=24)
    assert day.slope == one.slope and day.standard_error == pytest.approx(one.standard_error * math.sqrt(24))
