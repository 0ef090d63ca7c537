"""The bar-close decision kernel, compiled with numba: the backtest engine runs it on every bar (inlined into its
compiled loop) and the paper loop on each new bar, the same code.

At a bar's close, for arrays over the assets:
- `hit`: a position's stop or take-profit met by the bar's range (both: the stop, the worse; their order inside
  the bar is unknown);
- `decide`: exits on an opposite signal (once held `min_hold_bars`) or at the holding limit; then entries by signal
  strength (stable order) while open positions stay under max_positions, at most one entry of an asset per
  minimum holding time, a held asset only by a reversal as it leaves, shorts only where allowed, and never while
  the daily loss stop holds; each sized by mcp_trader.policy.sizing within the leverage cap.
Everything a decision uses is known at the close.
"""

import numpy as np
from numba import njit

from mcp_trader.policy.rules import SIGNAL, STOP, TAKE_PROFIT, TIME
from mcp_trader.policy.sizing import compiled_entry_size


@njit(cache=True, nogil=True, inline="always")
def hit(side: float, stop: float, target: float, high: float, low: float) -> int:  # pragma: no cover - compiled
    """STOP, TAKE_PROFIT or -1 for a position of `side` (+1 long, −1 short); `target` NaN: none."""
    if (side > 0 and low <= stop) or (side < 0 and high >= stop):
        return STOP
    if not np.isnan(target) and ((side > 0 and high >= target) or (side < 0 and low <= target)):
        return TAKE_PROFIT
    return -1


@njit(cache=True, nogil=True, inline="always")
def decide(exits, sizes, quantity, mark, bars_held, since_entry, signal, strength, fraction, close, atr, equity,
           halted, risk_per_trade, stop_atr, max_order_notional, max_positions, max_leverage, max_hold, min_hold,
           allow_short):  # pragma: no cover - compiled
    """Fills `exits` (reason per asset, -1 none) and `sizes` (entry size per asset in base units, 0 none; its side
    the signal's), arrays the caller owns, so that a backtest allocates nothing per bar.

    `quantity`: signed, held at this close (stopped positions already flat); `mark`: the price a held asset
    without a close this bar is valued at; `bars_held`: bars held before this one; `since_entry`: bars since the
    asset's latest entry decision (NEVER if none); `close` NaN: no candle this bar."""
    assets = quantity.shape[0]
    exits[:] = -1
    sizes[:] = 0.0
    staying, committed, wanted = 0, 0.0, 0
    for k in range(assets):
        wanted += signal[k] != 0
        if quantity[k] == 0.0:
            continue
        if not np.isnan(close[k]):
            side = np.sign(quantity[k])
            if signal[k] == -side and bars_held[k] + 1 >= min_hold:
                exits[k] = SIGNAL
                continue
            if max_hold > 0 and bars_held[k] + 1 >= max_hold:
                exits[k] = TIME
                continue
        staying += 1
        committed += abs(quantity[k]) * (close[k] if not np.isnan(close[k]) else mark[k])
    if halted or wanted == 0 or staying >= max_positions:
        return
    candidates = np.zeros(wanted, np.int64)
    score = np.full(wanted, -np.inf)
    n = 0
    for k in range(assets):
        s = signal[k]
        if s == 0 or np.isnan(close[k]) or not (atr[k] > 0) or (s < 0 and not allow_short):
            continue
        if since_entry[k] < min_hold:
            continue  # entered too recently: at most one entry per minimum holding time
        if quantity[k] != 0.0 and (exits[k] < 0 or s != -np.sign(quantity[k])):
            continue  # held, or leaving on time with the signal unchanged: only a reversal re-enters
        candidates[n] = k
        score[n] = strength[k] if not np.isnan(strength[k]) else 0.0
        n += 1
    for i in np.argsort(-score[:n], kind="mergesort"):
        if staying >= max_positions:
            break
        k = candidates[i]
        size = compiled_entry_size(risk_per_trade, stop_atr, max_order_notional, equity, atr[k], fraction[k],
                                   close[k], max_leverage * equity - committed)
        if size <= 0.0:
            continue
        sizes[k] = size
        staying += 1
        committed += size * close[k]
