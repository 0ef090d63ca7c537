"""The backtest engine's bar-close rules (engine.py steps 3 and 5) for one bar of live signals, so the paper loop
decides as a backtest would: stops and take-profits met by the bar, then exits on an opposite signal (after the
minimum holding time) or the holding limit, then entries by signal strength while positions stay under the limit,
sized risk × equity / (stop_atr × ATR) × the signal's size fraction (the cost gate's) and cut so that gross notional
stays within max_leverage × equity (and, here, the guard's notional per order)."""

from dataclasses import dataclass

from pydantic import BaseModel

# The guard checks each order against the equity after the bar's earlier fills (their fees): sizes are cut by this
# much so that an entry sized at the limit, as the engine sizes it, still passes.
SIZE_MARGIN = 0.999


class Held(BaseModel):
    symbol: str
    side: int  # +1 long, −1 short
    quantity: float
    stop: float
    target: float | None
    bars_held: int


@dataclass(frozen=True)
class BarSignal:
    symbol: str
    signal: int  # −1, 0, +1
    strength: float
    close: float
    high: float
    low: float
    atr: float | None
    fraction: float = 1.0  # of the risk-based size, from the cost gate


@dataclass(frozen=True)
class Exit:
    symbol: str
    reason: str  # stop, take_profit, signal, time


@dataclass(frozen=True)
class Entry:
    symbol: str
    side: int
    quantity: float
    distance: float  # stop distance (stop_atr × ATR): the stop is set this far from the fill price


@dataclass(frozen=True)
class Rules:
    risk_per_trade: float
    stop_atr: float
    take_profit_atr: float
    max_positions: int
    max_leverage: float
    max_order_notional: float
    max_hold_bars: int  # 0 = no limit
    allow_short: bool
    min_hold_bars: int = 0  # an opposite signal exits only after this many bars held


def decide(rules: Rules, bar: dict[str, BarSignal], held: dict[str, Held], equity: float,
           since_entry: dict[str, int] | None = None) -> tuple[list[Exit], list[Entry]]:
    """`since_entry`: bars from each symbol's latest entry decision to this bar (as the engine counts them)."""
    exits = _stops(bar, held)
    leaving = {e.symbol for e in exits}
    staying, committed = 0, 0.0
    for symbol, h in held.items():
        if symbol in leaving:
            continue
        now = bar.get(symbol)
        if now is not None and now.signal == -h.side and h.bars_held + 1 >= rules.min_hold_bars:
            exits.append(Exit(symbol, "signal"))
        elif now is not None and rules.max_hold_bars > 0 and h.bars_held + 1 >= rules.max_hold_bars:
            exits.append(Exit(symbol, "time"))
        else:
            staying += 1
            committed += h.quantity * (now.close if now else 0.0)
    return exits, _entries(rules, bar, held, {e.symbol: e.reason for e in exits}, staying, committed, equity,
                           since_entry or {})


def _stops(bar: dict[str, BarSignal], held: dict[str, Held]) -> list[Exit]:
    out = []
    for symbol, h in held.items():
        now = bar.get(symbol)
        if now is None:
            continue
        stopped = now.low <= h.stop if h.side > 0 else now.high >= h.stop
        reached = h.target is not None and (now.high >= h.target if h.side > 0 else now.low <= h.target)
        if stopped or reached:
            out.append(Exit(symbol, "stop" if stopped else "take_profit"))
    return out


def _entries(rules: Rules, bar: dict[str, BarSignal], held: dict[str, Held], leaving: dict[str, str], staying: int,
             committed: float, equity: float, since_entry: dict[str, int]) -> list[Entry]:
    candidates = []
    for symbol, now in bar.items():
        s = now.signal
        if s == 0 or not (now.atr and now.atr > 0) or (s < 0 and not rules.allow_short):
            continue
        if since_entry.get(symbol, rules.min_hold_bars) < rules.min_hold_bars:
            continue  # entered too recently: at most one entry per minimum holding time
        h, reason = held.get(symbol), leaving.get(symbol)
        if h is not None and reason not in ("stop", "take_profit") and (reason is None or s != -h.side):
            continue  # still held at the close, or leaving on time with the signal unchanged: only a reversal
        candidates.append(now)
    entries = []
    for now in sorted(candidates, key=lambda c: -c.strength):  # stable, as the engine's mergesort
        if staying >= rules.max_positions:
            break
        distance = rules.stop_atr * now.atr
        size = min(rules.risk_per_trade * equity / distance * now.fraction, rules.max_order_notional / now.close)
        size = min(size, (rules.max_leverage * equity - committed) / now.close) * SIZE_MARGIN
        if size <= 0:
            continue
        entries.append(Entry(now.symbol, now.signal, size, distance))
        staying += 1
        committed += size * now.close
    return entries
