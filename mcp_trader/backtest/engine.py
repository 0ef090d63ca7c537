"""The multi-asset event loop, compiled with numba: one pass over bars, a few assets per bar.

Per bar t, in this order:
1. funding: positions held at t's open pay (long, positive rate) or receive the rate settled in the bar,
   on the notional at the open;
2. orders decided at the previous close fill at t's open: exits first, then entries (a market order:
   open ± slippage and impact, taker fee). An entry whose asset has no candle at t is dropped; an exit
   waits for the asset's next candle;
3. stops and take-profits are checked against t's high/low, positions filled at this open included.
   If the bar reaches both, the stop is taken (their order inside the bar is unknown: assume the worse).
   A stop is a market order at its level, or at the open when the bar gapped through it, minus slippage
   and impact, at the taker fee; a take-profit is a resting limit order: its level (or the better open),
   no slippage, the maker fee;
4. at t's close, positions are marked at the close, equity = cash + Σ quantity × price;
5. decisions at t's close from the signal of bar t, by the policy kernel the paper loop runs too
   (mcp_trader.policy.kernel): exit on an opposite signal (once held the minimum holding time) or the holding
   limit, then entries by signal strength while positions stay under the limit (an asset entered at most once
   per minimum holding time, so stops and re-entries cannot churn), none while the daily loss stop holds (the
   day's loss from the equity at its start reached daily_loss_limit: new risk waits for the next UTC day, as the
   guard makes paper and live wait). Size (mcp_trader.policy.sizing): risk × equity divided by the stop distance
   (stop_atr × ATR at t), times the signal's size fraction (mcp_trader.backtest.edge: the share of its expected
   move left after costs), cut to max_order_notional and so that gross notional stays within max_leverage × equity.
Open positions are closed at the last bar's close (reason "end"). Everything a decision at t uses is
known at t's close; fills use t+1's open only as a market order would.

The kernel is inlined into the compiled loop (no call per bar). numba's on-disk cache is keyed on this file alone:
after editing mcp_trader/policy/, delete the *.nbi / *.nbc files under __pycache__ (the tests key their cache on
every source of the core, tests/conftest.py).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from mcp_trader.backtest.params import Costs
from mcp_trader.policy.kernel import decide, hit
from mcp_trader.policy.rules import END, EXIT_REASONS, NEVER, RUIN, STOP, TAKE_PROFIT, Policy

__all__ = ["EXIT_REASONS", "TRADE_FIELDS", "Simulation", "simulate"]
TRADE_FIELDS = (
    "asset", "side", "quantity", "decision_bar", "entry_bar", "entry_price", "exit_decision_bar", "exit_bar",
    "exit_price", "fees", "slippage", "funding", "pnl", "exit_reason", "stop_price", "take_profit_price",
    "strength", "entry_reference", "exit_reference",
)
_F = {name: i for i, name in enumerate(TRADE_FIELDS)}
A, SIDE, QTY, DEC, EBAR, EPX, XDEC, XBAR, XPX, FEES, SLIP, FUND, PNL, WHY, SL, TP, STR, EREF, XREF = range(
    len(TRADE_FIELDS))


@dataclass(frozen=True)
class Simulation:
    """Per bar: equity, cash, gross notional, open positions; per bar and asset: signed quantity held at the
    close; one row per trade (columns TRADE_FIELDS)."""

    equity: np.ndarray
    cash: np.ndarray
    gross: np.ndarray
    open_positions: np.ndarray
    positions: np.ndarray
    trades: np.ndarray

    def trade(self, name: str) -> np.ndarray:
        return self.trades[:, _F[name]]


def simulate(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
    signal: np.ndarray, strength: np.ndarray, atr: np.ndarray, funding: np.ndarray,
    capital: float, policy: Policy, costs: Costs, fraction: np.ndarray | None = None,
    day: np.ndarray | None = None,
) -> Simulation:
    """Arrays of shape (bars, assets), NaN where an asset has no candle; `signal` −1 / 0 / +1 at each close,
    `strength` ranks simultaneous entries, `atr` is known at each close, `funding` is the rate settled in each bar.
    `fraction` scales each entry's risk-based size (default 1). `day`: each bar's UTC day (any integer that
    changes when the day does), for the daily loss stop; None applies no daily stop (no calendar is known)."""
    fraction = np.ones_like(close) if fraction is None else fraction
    f64 = [np.ascontiguousarray(a, dtype=np.float64)
           for a in (open_, high, low, close, volume, strength, atr, fraction)]
    rates = np.ascontiguousarray(np.nan_to_num(funding, nan=0.0) if costs.funding else np.zeros_like(close))
    days = np.zeros(len(close), np.int64) if day is None else np.ascontiguousarray(day, dtype=np.int64)
    daily_limit = policy.limits.daily_loss_limit if day is not None else np.inf
    out = _run(
        f64[0], f64[1], f64[2], f64[3], f64[4], np.ascontiguousarray(signal, dtype=np.int8), f64[5], f64[6], f64[7],
        rates, days, float(capital), daily_limit, policy.take_profit_atr, *policy.numbers(), costs.maker_fee,
        costs.taker_fee, costs.slippage_bps / 1e4, costs.impact,
    )
    return Simulation(*out)


def utc_days(index: pd.DatetimeIndex) -> np.ndarray:
    """Each bar's UTC day as yyyymmdd, for the daily loss stop (a naive index is read as UTC)."""
    utc = index.tz_convert("UTC") if index.tz is not None else index
    return np.asarray(utc.year * 10_000 + utc.month * 100 + utc.day, dtype=np.int64)


@njit(cache=True, nogil=True)
def _market(reference, direction, size, dollar_volume, volatility, fixed, impact):  # pragma: no cover - compiled
    """A market order's fill: `direction` +1 buys above the reference, −1 sells below it, by
    fixed + impact × volatility × √participation (the square-root law)."""
    participation = min(size * reference / dollar_volume, 1.0) if dollar_volume > 0 else 1.0
    return reference * (1.0 + direction * (fixed + impact * volatility * np.sqrt(participation)))


@njit(cache=True, nogil=True)
def _grow(trades, n):  # pragma: no cover - compiled
    if n < trades.shape[0]:
        return trades
    bigger = np.full((trades.shape[0] * 2, trades.shape[1]), np.nan)
    bigger[:n] = trades[:n]
    return bigger


@njit(cache=True, nogil=True)
def _close(trades, row, bar, price, reference, fee_rate, reason, qty, side):  # pragma: no cover - compiled
    """Book an exit of a whole position into its trade row; returns the cash it brings in (after the fee)."""
    fee = qty * price * fee_rate
    trades[row, XBAR] = bar
    trades[row, XPX] = price
    trades[row, XREF] = reference
    trades[row, FEES] += fee
    trades[row, SLIP] += qty * abs(price - reference)
    trades[row, WHY] = reason
    trades[row, PNL] = side * qty * (price - trades[row, EPX]) - trades[row, FEES] + trades[row, FUND]
    return side * qty * price - fee


@njit(cache=True, nogil=True)
def _run(
    open_, high, low, close, volume, signal, strength, atr, fraction, funding, day, capital, daily_loss_limit, tp_atr,
    risk, stop_atr, max_order_notional, max_positions, max_leverage, max_hold, min_hold, allow_short, maker, taker,
    fixed_slip, impact,
):  # pragma: no cover - compiled
    bars, assets = close.shape
    equity = np.zeros(bars)
    cash_out = np.zeros(bars)
    gross_out = np.zeros(bars)
    npos_out = np.zeros(bars, np.int32)
    held = np.zeros((bars, assets))
    trades = np.full((max(16, 4 * assets), len(TRADE_FIELDS)), np.nan)
    n_trades = 0

    qty = np.zeros(assets)  # signed
    row = np.full(assets, -1)  # open trade row per asset
    stop = np.zeros(assets)
    target = np.zeros(assets)
    age = np.zeros(assets, np.int64)
    last_price = np.full(assets, np.nan)
    last_dvol = np.zeros(assets)
    last_vol = np.zeros(assets)  # ATR / close at the last close: the impact model's volatility
    exit_pending = np.full(assets, -1)  # reason code, -1 none
    exit_decided = np.zeros(assets, np.int64)
    entry_side = np.zeros(assets, np.int64)  # pending entry: side, 0 none
    entry_qty = np.zeros(assets)
    entry_dist = np.zeros(assets)
    entry_decided = np.zeros(assets, np.int64)
    since = np.full(assets, NEVER, np.int64)  # bars from the latest entry decision per asset to this close
    exits, sizes = np.full(assets, -1, np.int64), np.zeros(assets)  # the kernel's answer at each close
    cash = capital
    ruined_before = False
    day_start, halted_day = capital, np.int64(-1)

    for t in range(bars):
        # 1. funding settled in this bar, on what is held at its open
        for k in range(assets):
            if qty[k] != 0.0 and funding[t, k] != 0.0:
                mark = open_[t, k] if not np.isnan(open_[t, k]) else last_price[k]
                payment = qty[k] * mark * funding[t, k]
                cash -= payment
                trades[row[k], FUND] -= payment

        # 2. fills at the open: exits, then entries
        for k in range(assets):
            if np.isnan(open_[t, k]):
                entry_side[k] = 0
                continue
            if exit_pending[k] >= 0 and qty[k] != 0.0:
                side, size = np.sign(qty[k]), abs(qty[k])
                price = _market(open_[t, k], -side, size, last_dvol[k], last_vol[k], fixed_slip, impact)
                cash += _close(trades, row[k], t, price, open_[t, k], taker, exit_pending[k], size, side)
                trades[row[k], XDEC] = exit_decided[k]
                qty[k], row[k] = 0.0, -1
            exit_pending[k] = -1
        for k in range(assets):
            if entry_side[k] == 0 or np.isnan(open_[t, k]):
                continue
            side, size = entry_side[k], entry_qty[k]
            price = _market(open_[t, k], side, size, last_dvol[k], last_vol[k], fixed_slip, impact)
            fee = size * price * taker
            cash -= side * size * price + fee
            trades = _grow(trades, n_trades)
            r = n_trades
            n_trades += 1
            trades[r, A], trades[r, SIDE], trades[r, QTY] = k, side, size
            trades[r, DEC], trades[r, EBAR], trades[r, EPX], trades[r, EREF] = entry_decided[k], t, price, open_[t, k]
            trades[r, XDEC], trades[r, FEES], trades[r, FUND] = -1, fee, 0.0
            trades[r, SLIP] = size * abs(price - open_[t, k])
            stop[k] = price - side * entry_dist[k]
            target[k] = price + side * entry_dist[k] * tp_atr / stop_atr if tp_atr > 0 else np.nan
            trades[r, SL], trades[r, TP], trades[r, STR] = stop[k], target[k], strength[entry_decided[k], k]
            qty[k], row[k], age[k], entry_side[k] = side * size, r, 0, 0

        # 3. stops and take-profits inside the bar
        for k in range(assets):
            if qty[k] == 0.0 or np.isnan(open_[t, k]):
                continue
            side, size = np.sign(qty[k]), abs(qty[k])
            reason = hit(side, stop[k], target[k], high[t, k], low[t, k])
            if reason == STOP:
                level = min(open_[t, k], stop[k]) if side > 0 else max(open_[t, k], stop[k])
                price = _market(level, -side, size, last_dvol[k], last_vol[k], fixed_slip, impact)
                cash += _close(trades, row[k], t, price, level, taker, STOP, size, side)
            elif reason == TAKE_PROFIT:
                level = max(open_[t, k], target[k]) if side > 0 else min(open_[t, k], target[k])
                cash += _close(trades, row[k], t, level, level, maker, TAKE_PROFIT, size, side)
            else:
                continue
            qty[k], row[k] = 0.0, -1

        # 4. mark at the close
        value, gross, npos = 0.0, 0.0, 0
        for k in range(assets):
            if not np.isnan(close[t, k]):
                last_price[k] = close[t, k]
                last_dvol[k] = close[t, k] * volume[t, k]
                if atr[t, k] > 0:
                    last_vol[k] = atr[t, k] / close[t, k]
            if qty[k] != 0.0:
                value += qty[k] * last_price[k]
                gross += abs(qty[k]) * last_price[k]
                npos += 1
        eq = cash + value

        last, ruined = t == bars - 1, eq <= 0.0
        if (ruined or last) and npos > 0:  # ruin or the end: close everything at the close
            for k in range(assets):
                if qty[k] != 0.0:
                    side, size = np.sign(qty[k]), abs(qty[k])
                    price = _market(last_price[k], -side, size, last_dvol[k], last_vol[k], fixed_slip, impact)
                    cash += _close(trades, row[k], t, price, last_price[k], taker, RUIN if ruined else END, size, side)
                    trades[row[k], XDEC] = t
                    qty[k], row[k] = 0.0, -1
            eq, gross, npos = cash, 0.0, 0
        ruined_before = ruined_before or ruined
        equity[t], cash_out[t], gross_out[t], npos_out[t] = eq, cash, gross, npos
        held[t] = qty
        if last or ruined_before:
            continue

        # 5. decisions at the close (mcp_trader.policy.kernel, as the paper loop decides)
        if t == 0 or day[t] != day[t - 1]:
            day_start = capital if t == 0 else equity[t - 1]
        if day_start > 0 and 1.0 - eq / day_start >= daily_loss_limit:
            halted_day = day[t]  # new risk halts until the next UTC day, as the guard halts it
        decide(exits, sizes, qty, last_price, age, since, signal[t], strength[t], fraction[t], close[t], atr[t], eq,
               halted_day == day[t], risk, stop_atr, max_order_notional, max_positions, max_leverage, max_hold,
               min_hold, allow_short)
        for k in range(assets):
            since[k] += 1
            if qty[k] != 0.0 and not np.isnan(close[t, k]):
                age[k] += 1
            if exits[k] >= 0:
                exit_pending[k], exit_decided[k] = exits[k], t
            if sizes[k] > 0.0:
                entry_side[k], entry_qty[k], entry_dist[k], entry_decided[k] = signal[t, k], sizes[k], \
                    stop_atr * atr[t, k], t
                since[k] = 1  # at the next close
    return equity, cash_out, gross_out, npos_out, held, trades[:n_trades].copy()
