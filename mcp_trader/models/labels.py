"""Triple-barrier labels: BUY / HOLD / SELL from what price did over the next `horizon` bars.

At bar t (entry at its close) two barriers sit at ±(barrier × σ_t × √horizon + cost_t) in log
price, where σ_t is the volatility of one-bar log returns over the bars up to t. The label is BUY
if the high reaches the upper barrier first, SELL if the low reaches the lower one first, and HOLD
if neither is reached within the horizon (the time limit) or both are reached inside the same bar
(their order is unknown, so no direction is claimed). A label needs all `horizon` later candles;
across a gap or near the end of the data there is none. Each label records the bar where it was
decided (t1 ≤ t + horizon), which walk-forward evaluation uses to purge overlapping labels.

Labels look ahead by construction; they are targets, never features.
"""

from dataclasses import dataclass

import numpy as np
from numba import njit

from mcp_trader.models.base import BUY, HOLD, SELL


@dataclass(frozen=True)
class Labels:
    """Arrays of shape (bars, assets): class code (-1 where none), decision bar t1 (-1), forward log return."""

    y: np.ndarray
    t1: np.ndarray
    fwd: np.ndarray


@njit(cache=True, nogil=True)
def _barriers(close, high, low, width, horizon, y, t1, fwd):  # pragma: no cover - compiled
    bars, assets = close.shape
    for k in range(assets):
        for t in range(bars):
            y[t, k] = -1
            t1[t, k] = -1
            fwd[t, k] = np.nan
            if t + horizon >= bars or np.isnan(close[t, k]) or np.isnan(width[t, k]):
                continue
            complete = True
            for j in range(t + 1, t + horizon + 1):
                if np.isnan(close[j, k]):
                    complete = False
                    break
            if not complete:
                continue
            entry = close[t, k]
            label, end = HOLD, t + horizon
            for j in range(t + 1, t + horizon + 1):
                up = np.log(high[j, k] / entry) >= width[t, k]
                down = np.log(low[j, k] / entry) <= -width[t, k]
                if up or down:
                    label = HOLD if (up and down) else (BUY if up else SELL)
                    end = j
                    break
            y[t, k] = label
            t1[t, k] = end
            fwd[t, k] = np.log(close[t + horizon, k] / entry)


def triple_barrier(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, vol: np.ndarray, horizon: int, barrier: float,
    cost: np.ndarray | float = 0.0,
) -> Labels:
    """`vol`: σ of one-bar log returns known at each bar; `cost`: log-return cost added to both barriers."""
    width = barrier * vol * np.sqrt(horizon) + cost
    width = np.where(width > 0, width, np.nan)  # a zero-width barrier (flat history) would label noise
    shape = close.shape
    y, t1, fwd = np.empty(shape, np.int8), np.empty(shape, np.int32), np.empty(shape)
    _barriers(close, high, low, np.ascontiguousarray(width, dtype=np.float64), horizon, y, t1, fwd)
    return Labels(y=y, t1=t1, fwd=fwd)
