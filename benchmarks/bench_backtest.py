"""Backtest figures: the engine's speed on 10 assets × 100,000 hourly bars with the full cost and risk model,
against vectorbt's `Portfolio.from_signals` on the same signals, measured in the same run.

    python benchmarks/bench_backtest.py [--bars 100000] [--assets 10] [--repeat 5] [--max-hold 24]

Data: candles from the synthetic generator (correlated GARCH-t assets with fat tails, volatility clustering and
volume that follows moves), one frame per asset from `_asset_frame`, aligned on one hourly grid. The last asset
lists late (its first 30 % of bars are missing) and another has a 48-bar outage, so both sides see NaN gaps.

Signals (computed vectorised, before any timing, and shared by both sides): +1 / -1 on the bar where the 96-bar
moving average of the close crosses above / below the 480-bar one, 0 otherwise (about 2,700 crossings on the
default data); strength = |24-bar change of the close| / ATR ranks simultaneous entries. ATR(14) is TA-Lib's, on
each gap-free run. Funding: 0.0001 settled every 8 bars. The synthetic market has no drift and no serial
correlation, so no rule has an edge and costs drain both equity curves: the final values are a sanity check of
the bookkeeping, not a result.

Ours: `engine.simulate` with the default policy (mcp_trader.policy: the limits paper and live trade under) and
Costs() defaults: taker/maker fees, 2 bps slippage, square-root volume impact, funding, 3-ATR stops and 3-ATR
take-profits from the fill, risk-based sizing (1 % of equity per stop) cut to 5,000 USDT an order, at most 5
positions, gross leverage <= 3, the 5 % daily loss stop on the bars' UTC days, and a --max-hold bar limit (24 =
what run_backtest uses for a 24-bar model horizon; 0 = none). Orders decided at a close fill at the next open. It
returns the equity, cash, gross and positions per bar and the trade table, so no further step is needed for them.

vectorbt: `Portfolio.from_signals` (numba engine unless vectorbt-rust is installed) on the same columns, one
cash-sharing group, init_cash 10,000, freq 1h: long/short entries from the same signals shifted one bar and filled
at price=open (next-open fills like ours), an opposite entry only closes the position (Percent sizing cannot
reverse, so the reversal ours makes there is skipped; rare, stops end most trades first), taker fee 0.00035, 2 bps
slippage, per-entry sl_stop/tp_stop of 3 / 3 ATR as fractions of the decision bar's close, from the fill price,
stop exits as market orders; size 20 % of free cash per entry. It has no funding, no volume impact, no maker fee
for take-profits, no position limit, no leverage and no holding limit. Its time is given for from_signals alone
(the order simulation) and with `.final_value()` read (the equity, which ours produces in the same call); the ratio
uses the latter.

Both sides are called once before timing (numba compile or on-disk cache load) and the figure is the best of
--repeat runs timed with time.perf_counter.
"""

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import vectorbt as vbt
from vectorbt._engine import resolve_engine

from mcp_trader.backtest.engine import EXIT_REASONS, Simulation, simulate, utc_days
from mcp_trader.backtest.params import Costs
from mcp_trader.data.sources.sample import ASSETS
from mcp_trader.data.sources.synthetic import _asset_frame
from mcp_trader.features.indicators import atr
from mcp_trader.features.panel import Panel, align
from mcp_trader.policy.rules import Policy

SEED = 7
CAPITAL = 10_000.0
FAST, SLOW, MOMENTUM = 96, 480, 24  # moving averages and the strength's look-back, in bars
FUNDING_RATE, FUNDING_EVERY = 0.0001, 8
VBT_SIZE = 0.2  # share of free cash per vectorbt entry


@dataclass(frozen=True)
class Inputs:
    panel: Panel
    signal: np.ndarray  # int8, -1 / 0 / +1 at each close
    strength: np.ndarray
    atr: np.ndarray
    funding: np.ndarray


def best_of(call: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times), times


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def candles(bars: int, assets: int) -> Panel:
    """Synthetic candles with a late listing (last asset) and a 48-bar outage (second asset)."""
    frames = {f"{base}/USDT": _asset_frame(SEED, base, bars) for base in ASSETS[:assets]}
    names = list(frames)
    if assets >= 2:
        late = names[-1]
        frames[late] = frames[late].iloc[int(0.3 * bars):]
    if assets >= 3:
        outage = names[1]
        gap = frames[outage].index[bars // 2: bars // 2 + 48]
        frames[outage] = frames[outage].drop(gap)
    return align(frames, "1h")


def signals(panel: Panel) -> Inputs:
    """The moving-average crossing, its strength, ATR(14) and the funding grid; all causal (known at each close)."""
    close = pd.DataFrame(panel.close)
    difference = (close.rolling(FAST, min_periods=FAST).mean() - close.rolling(SLOW, min_periods=SLOW).mean())
    side = np.sign(difference.fillna(0.0).to_numpy()).astype(np.int8)
    before = np.vstack([np.zeros((1, side.shape[1]), np.int8), side[:-1]])
    signal = np.where((side != before) & (before != 0), side, 0).astype(np.int8)
    true_range = atr(panel)
    with np.errstate(invalid="ignore", divide="ignore"):
        strength = np.abs(close.diff(MOMENTUM).to_numpy()) / true_range  # the last day's move in ATRs
    funding = np.zeros(panel.shape)
    funding[::FUNDING_EVERY] = FUNDING_RATE
    return Inputs(panel, signal, strength, true_range, funding)


def ours(inputs: Inputs, policy: Policy, costs: Costs) -> Simulation:
    p = inputs.panel
    return simulate(p.open, p.high, p.low, p.close, p.volume, inputs.signal, inputs.strength, inputs.atr,
                    inputs.funding, CAPITAL, policy, costs, day=utc_days(p.index))


def vbt_arguments(inputs: Inputs, policy: Policy, costs: Costs) -> dict:
    """from_signals arguments: the decisions at t's close moved to bar t+1, where they fill at the open."""
    p = inputs.panel

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=p.index, columns=list(p.symbols))

    shifted = frame(inputs.signal).shift(1, fill_value=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = frame(inputs.atr / p.close).shift(1)  # ATR as a fraction of the decision bar's close
    return dict(
        close=frame(p.close), open=frame(p.open), high=frame(p.high), low=frame(p.low), price=frame(p.open),
        entries=shifted > 0, short_entries=shifted < 0, upon_opposite_entry="close",
        size=VBT_SIZE, size_type="percent", fees=costs.taker_fee, slippage=costs.slippage_bps / 1e4,
        sl_stop=policy.limits.stop_atr * distance, tp_stop=policy.take_profit_atr * distance,
        stop_entry_price="fillprice", stop_exit_price="stopmarket",
        init_cash=CAPITAL, cash_sharing=True, group_by=True, freq="1h",
    )


def theirs(arguments: dict) -> vbt.Portfolio:
    return vbt.Portfolio.from_signals(**arguments)


def reasons(sim: Simulation) -> str:
    codes = sim.trade("exit_reason").astype(int)
    counts = np.bincount(codes, minlength=len(EXIT_REASONS))
    return ", ".join(f"{name} {n:,}" for name, n in zip(EXIT_REASONS, counts, strict=True) if n)


def rate(bars: int, assets: int, seconds: float) -> str:
    return f"{seconds:8.3f} s  {bars / seconds:12,.0f} bars/s  {bars * assets / seconds:13,.0f} asset-bars/s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--assets", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-hold", type=int, default=24, help="our holding limit in bars, 0 = none")
    args = parser.parse_args()
    load = os.getloadavg()
    engine = resolve_engine()
    print(f"{os.cpu_count()} CPUs ({cpu_name()}), load average {load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f} at start; Python {platform.python_version()}, numpy {np.__version__}, "
          f"numba {numba.__version__}, vectorbt {vbt.__version__} ({engine} engine)")

    started = time.perf_counter()
    panel = candles(args.bars, args.assets)
    inputs = signals(panel)
    bars, assets = panel.shape
    present = int(panel.present.sum())
    crossings = np.count_nonzero(inputs.signal)
    print(f"data: {assets} synthetic assets x {bars:,} hourly bars ({bars * assets:,} cells, {present:,} with a "
          f"candle); {crossings:,} MA {FAST}/{SLOW} crossings; made in {time.perf_counter() - started:.1f} s")

    policy, costs = Policy(max_hold_bars=args.max_hold), Costs()
    started = time.perf_counter()
    sim = ours(inputs, policy, costs)
    first = time.perf_counter() - started
    our_best, our_runs = best_of(lambda: ours(inputs, policy, costs), args.repeat)

    arguments = vbt_arguments(inputs, policy, costs)
    started = time.perf_counter()
    pf = theirs(arguments)
    vbt_final = float(pf.final_value())
    vbt_first = time.perf_counter() - started
    sim_best, _ = best_of(lambda: theirs(arguments), args.repeat)
    full_best, full_runs = best_of(lambda: float(theirs(arguments).final_value()), args.repeat)

    hold = f"hold <= {args.max_hold} bars" if args.max_hold else "no holding limit"
    limits = policy.limits
    print(f"\nours, engine.simulate (fees, slippage, impact, funding, stops, take-profits, max {limits.max_positions} "
          f"positions, leverage <= {limits.max_leverage:g}, orders <= {limits.max_order_notional:,.0f} USDT, daily "
          f"loss stop {limits.daily_loss_limit:.0%}, {hold}; returns equity and trades):")
    print(f"  first call (numba compile / cache load)   : {first:8.3f} s")
    print(f"  best of {args.repeat:<34}: {rate(bars, assets, our_best)}   (runs "
          f"{', '.join(f'{t:.3f}' for t in our_runs)})")
    print("vectorbt, Portfolio.from_signals (fees, slippage, stops, take-profits; no funding, impact, position limit, "
          "leverage or holding limit):")
    print(f"  first call (numba compile / cache load)   : {vbt_first:8.3f} s")
    print(f"  from_signals only, best of {args.repeat:<15}: {rate(bars, assets, sim_best)}")
    print(f"  from_signals + final_value, best of {args.repeat:<6}: {rate(bars, assets, full_best)}   (runs "
          f"{', '.join(f'{t:.3f}' for t in full_runs)})")
    print(f"\nratio, our speed / vectorbt's (with final_value): {full_best / our_best:6.2f} x   "
          f"(vs from_signals only: {sim_best / our_best:.2f} x); target >= 1: "
          f"{'holds' if our_best <= full_best else 'MISSED'}")
    print(f"sanity: trades ours {len(sim.trades):,} ({reasons(sim)}), vectorbt {int(pf.trades.count()):,} "
          f"(orders {int(pf.orders.count()):,}); final value ours {sim.equity[-1]:,.0f}, vectorbt {vbt_final:,.0f}")


if __name__ == "__main__":
    main()
