"""The strategies a model has to beat, on the same span, assets, costs and risk rules as the run they sit beside.

- buy_and_hold: the capital split equally, each share bought at its asset's first open in the span (taker fee,
  slippage; an asset that lists later waits in cash), held to the last close, funding charged; no stops;
- flat: no position (return 0, Sharpe undefined);
- trend_4h, trend_1d (time-series momentum): long while the 20-bar moving average of the 4h (1d) closes is above
  the 50-bar one, short while below;
- breakout_4h, breakout_1d (Donchian): long from a 4h (1d) close above the highest of the 20 before it, short
  from one below the lowest, held until the opposite breakout;
- momentum (cross-sectional): at each UTC day's close, long the third of the assets with the highest 30-day
  return, short the third with the lowest (with two or three assets: the best and the worst).
The signal rules are traded by the backtest engine (next-open fills, stops, sizing, costs) with no cost gate and a
minimum holding time of one bar of their timeframe. Each is decided from bars that have closed: a 4h bar is known
at the close of its last hourly bar. Settings are the textbook ones, fixed a priori, never fitted here.
"""

import numpy as np
import pandas as pd

from mcp_trader.backtest.params import Costs
from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.features.panel import Panel

RULES = {
    "trend_4h": "long while the 20-bar moving average of 4h closes is above the 50-bar one, short while below",
    "trend_1d": "long while the 20-day moving average of daily closes is above the 50-day one, short while below",
    "breakout_4h": "long from a 4h close above the highest of the previous 20, short from one below the lowest",
    "breakout_1d": "long from a daily close above the highest of the previous 20, short from one below the lowest",
    "momentum": "each day, long the third of the assets with the highest 30-day return, short the lowest third",
}
FAST, SLOW, CHANNEL, LOOKBACK_DAYS = 20, 50, 20, 30
WARMUP = pd.Timedelta(days=SLOW + 2)  # candles a run reads before its span so that every rule has settled


def rule_signals(name: str, panel: Panel) -> tuple[np.ndarray, np.ndarray, int]:
    """(signal, strength, minimum holding bars) on the panel's grid for one of RULES."""
    timeframe = "1d" if name.endswith("1d") or name == "momentum" else "4h"
    closes, at = _closes(panel, timeframe)
    if name.startswith("trend"):
        fast, slow = closes.rolling(FAST).mean(), closes.rolling(SLOW).mean()
        decided, strength = np.sign(fast - slow), ((fast - slow) / slow).abs()
    elif name.startswith("breakout"):
        upper, lower = closes.rolling(CHANNEL).max().shift(1), closes.rolling(CHANNEL).min().shift(1)
        decided = pd.DataFrame(np.where(closes > upper, 1.0, np.where(closes < lower, -1.0, np.nan)),
                               index=closes.index).ffill()
        strength = pd.DataFrame(1.0, index=closes.index, columns=closes.columns)
    else:
        decided, strength = _cross_sectional(closes)
    signal = _on_grid(decided, at, panel)
    hold = timeframe_ms(timeframe) // timeframe_ms(panel.timeframe)
    return np.nan_to_num(signal).astype(np.int8), np.nan_to_num(_on_grid(strength, at, panel)), int(hold)


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


def _closes(panel: Panel, timeframe: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Closes of the coarser bars, one row per coarse bar, and the panel rows at whose close each is known."""
    step = pd.Timedelta(milliseconds=timeframe_ms(panel.timeframe))
    ends = panel.index + step
    last = np.flatnonzero(ends == ends.floor(pd.Timedelta(milliseconds=timeframe_ms(timeframe))))
    return pd.DataFrame(panel.close[last], index=panel.index[last]), last


def _cross_sectional(closes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    past = closes / closes.shift(LOOKBACK_DAYS) - 1.0
    ranks = past.rank(axis=1, method="first")
    counted = past.notna().sum(axis=1)
    third = np.maximum(1, counted // 3).to_numpy()[:, None]
    long_ = ranks.to_numpy() > (counted.to_numpy()[:, None] - third)
    short = ranks.to_numpy() <= third
    usable = (counted >= 2).to_numpy()[:, None]
    decided = np.where(usable & long_, 1.0, np.where(usable & short, -1.0, 0.0))
    decided = np.where(past.notna(), decided, np.nan)
    return pd.DataFrame(decided, index=closes.index), past.abs()


def _on_grid(values: pd.DataFrame, at: np.ndarray, panel: Panel) -> np.ndarray:
    """Coarse-bar values carried onto the panel's rows from the row where each is known; NaN where the asset has
    no candle (no decision without a price)."""
    out = np.full(panel.shape, np.nan)
    out[at] = values.to_numpy()
    filled = pd.DataFrame(out).ffill().to_numpy()
    return np.where(np.isnan(panel.close), np.nan, filled)


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last known close forward for marking (never for signals or fills)."""
    index = np.where(~np.isnan(values), np.arange(len(values))[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    return values[index, np.arange(values.shape[1])]
