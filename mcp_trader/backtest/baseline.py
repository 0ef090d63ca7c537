"""Buy-and-hold of the same assets with the same costs: the figure a strategy has to beat.

The capital is split equally; each asset's share is bought at its first open in the span (taker fee
and fixed slippage; an asset that lists later waits in cash), held, and sold at the last close.
Perpetual funding is charged as for the strategy.
"""

import numpy as np

from mcp_trader.backtest.params import Costs


def buy_and_hold(open_: np.ndarray, close: np.ndarray, funding: np.ndarray, capital: float, costs: Costs) -> np.ndarray:
    bars, assets = close.shape
    share = capital / assets
    slip = costs.slippage_bps / 1e4
    listed = ~np.isnan(open_)
    first = np.where(listed.any(axis=0), listed.argmax(axis=0), bars)
    held = np.arange(bars)[:, None] >= first[None, :]
    entry = open_[np.minimum(first, bars - 1), np.arange(assets)] * (1 + slip)
    units = np.where(first < bars, share / (entry * (1 + costs.taker_fee)), 0.0)
    marks = _forward_fill(close)
    marks_open = np.where(listed, open_, np.vstack([np.full((1, assets), np.nan), marks[:-1]]))
    rates = np.nan_to_num(funding, nan=0.0) if costs.funding else np.zeros_like(close)
    paying = np.arange(bars)[:, None] > first[None, :]  # funding settles at an open, before that open's fill
    paid = np.cumsum(np.where(paying, units * np.nan_to_num(marks_open) * rates, 0.0), axis=0)
    value = np.where(held, units * np.nan_to_num(marks), share) - paid
    equity = value.sum(axis=1)
    exit_cost = (units * np.nan_to_num(marks[-1]) * (costs.taker_fee + slip)).sum()
    equity[-1] -= exit_cost
    return equity


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last known close forward for marking (never for signals or fills)."""
    index = np.where(~np.isnan(values), np.arange(len(values))[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    return values[index, np.arange(values.shape[1])]
