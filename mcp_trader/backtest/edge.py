"""Decisions that know what trading costs: a signal is taken only where its expected move over the horizon pays
the round trip by a margin, and its size is the share of that move left after costs.

Expected move over the horizon, as a return, at each bar's close:
- a model: scale × (P(BUY) − P(SELL)) × w, where w = barrier × σ × √horizon is the width of the triple barriers
  it was trained on (σ: the rolling standard deviation of log returns that its labels used, known at the bar) and
  scale is how much of that implied move its validation rows bore out (mcp_trader.models.edge: 0 when they show
  no direction skill beyond noise, so such a model stays flat);
- the confluence rule: score × w with a one-σ barrier over the holding limit (the score read as P(up) − P(down)).
Round-trip cost, as a return: two taker fees, two slippages, and twice the square-root impact of the order the
policy would send (risk × capital / stop distance, within the leverage cap and the order notional limit). A signal
passes when |expected| ≥ (1 + margin) × cost in its own direction; its strength (ranking simultaneous entries) is
the net edge |expected| − cost, and its size fraction (of the risk-based size) is net edge / |expected|.

The same gate serves the backtest, the optimiser's objective, get_signals and the paper loop.
"""

import numpy as np

from mcp_trader.backtest.params import Costs
from mcp_trader.features.rolling import rolling_mean_std
from mcp_trader.models.base import BUY, SELL
from mcp_trader.policy.limits import RiskLimits
from mcp_trader.policy.sizing import entry_size


def barrier_width(close: np.ndarray, horizon: int, barrier: float, window: int) -> np.ndarray:
    """barrier × σ × √horizon per (bar, asset), σ of log returns over `window` bars up to the bar; NaN before."""
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.full(close.shape, np.nan)
        returns[1:] = np.log(close[1:] / close[:-1])
    _, sigma = rolling_mean_std(returns, window)
    return barrier * sigma * np.sqrt(horizon)


def expected_from_probabilities(proba: np.ndarray, width: np.ndarray) -> np.ndarray:
    return (proba[..., BUY] - proba[..., SELL]) * width


def expected_from_score(score: np.ndarray, width: np.ndarray) -> np.ndarray:
    return score * width


def round_trip_cost(costs: Costs, limits: RiskLimits, capital: float, close: np.ndarray, atr: np.ndarray,
                    volume: np.ndarray) -> np.ndarray:
    """Fees, slippage and impact of entering and leaving, as a return, for the risk-sized order the policy sends."""
    with np.errstate(invalid="ignore", divide="ignore"):
        volatility = atr / close
        notional = close * entry_size(limits.risk_per_trade, limits.stop_atr, limits.max_order_notional, capital, atr,
                                      1.0, close, limits.max_leverage * capital)
        participation = np.minimum(notional / (close * volume), 1.0)
    participation = np.where(np.isfinite(participation), participation, 1.0)
    per_side = costs.taker_fee + costs.slippage_bps / 1e4 + costs.impact * volatility * np.sqrt(participation)
    return 2 * per_side


def gate(signal: np.ndarray, expected: np.ndarray, margin: float, costs: Costs, limits: RiskLimits, capital: float,
         close: np.ndarray, atr: np.ndarray, volume: np.ndarray) -> tuple[np.ndarray, ...]:
    """(signal, strength, size fraction, cost) of signals whose expected move pays the engine's round trip."""
    cost = round_trip_cost(costs, limits, capital, close, atr, volume)
    return (*cost_gate(signal, expected, cost, margin), cost)


def cost_gate(signal: np.ndarray, expected: np.ndarray, cost: np.ndarray,
              margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signal, strength, size fraction): signals whose expected move pays (1 + margin) × cost in their direction."""
    size = np.abs(np.nan_to_num(expected, nan=0.0))
    known = np.isfinite(expected) & np.isfinite(cost)
    keep = (signal != 0) & known & (np.sign(np.nan_to_num(expected)) == signal) & (size >= (1 + margin) * cost)
    net = np.where(keep, size - np.nan_to_num(cost), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(keep, net / size, 0.0)
    return np.where(keep, signal, 0).astype(np.int8), net, fraction
