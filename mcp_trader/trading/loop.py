"""The paper-trading loop: on each new bar, the signals a backtest would compute, the bar-close decision kernel the
backtest engine runs (mcp_trader.policy.kernel), and market orders through the desk and its risk guard. Orders carry
client ids made of the loop, the bar and the symbol, so a bar re-run after a restart answers its orders, never
repeats them. Differences from a backtest, by construction: fills are at the latest close plus slippage (the engine
uses the next bar's open), and stops and take-profits are checked on each new bar and closed at market."""

import asyncio
import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mcp_trader.errors import InputError, NotFoundError, Refused
from mcp_trader.jobs import JobControl
from mcp_trader.policy.limits import DEFAULT_TAKE_PROFIT_ATR
from mcp_trader.policy.rules import EXIT_REASONS, NEVER, Policy
from mcp_trader.trading.desks import desk_of
from mcp_trader.trading.orders import OrderRequest
from mcp_trader.trading.signals import SignalRequest, decide

if TYPE_CHECKING:
    from mcp_trader.home import Home

log = logging.getLogger(__name__)
DEFAULT_HOLD_BARS = 24  # the models' label horizon, the backtest's default holding limit
# The guard checks each order against the equity after the bar's earlier fills (their fees): sizes are cut by this
# much so that an entry sized at a limit, as the engine sizes it, still passes.
SIZE_MARGIN = 0.999


class Held(BaseModel):
    symbol: str
    side: int  # +1 long, −1 short
    quantity: float
    stop: float
    target: float | None
    bars_held: int


class BarSignal(BaseModel, frozen=True):
    """A symbol's decision at the bar's close, with the range of the bar that stops are checked against."""

    symbol: str
    signal: int  # −1, 0, +1
    strength: float
    close: float
    high: float
    low: float
    atr: float | None
    fraction: float = 1.0  # of the risk-based size, from the cost gate


class Entry(BaseModel, frozen=True):
    symbol: str
    side: int
    quantity: float
    distance: float  # stop distance (stop_atr × ATR): the stop is set this far from the fill price


class LoopRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signals: SignalRequest
    poll_seconds: float = Field(60.0, ge=0.2, le=3600, description="How often to look for a new bar.")
    max_bars: int | None = Field(None, ge=1, le=1_000_000, description="Stop after acting on this many bars.")
    take_profit_atr: float = Field(DEFAULT_TAKE_PROFIT_ATR, ge=0, le=100, description="As the backtest: 0 = none.")
    max_hold_bars: int = Field(DEFAULT_HOLD_BARS, ge=0, le=100_000, description="0 = hold until a signal exits.")
    min_hold_bars: int | None = Field(None, ge=0, le=100_000, description="As the backtest: an opposite signal exits "
                                      "after this many bars; default 0 for a model, 24 (1h bars) for confluence.")
    allow_short: bool = True
    collect: bool = Field(True, description="Fetch new candles each poll (skipped when the server is offline).")


class BarActions(BaseModel):
    bar: str
    orders: list[str]
    exits: dict[str, str]
    refused: dict[str, str]


class LoopSummary(BaseModel):
    loop_id: str
    bars: int
    orders: int
    refused: int
    last_bar: str | None
    recent: list[BarActions]


async def run_loop(home: "Home", loop_id: str, request: LoopRequest, control: JobControl) -> LoopSummary:
    summary = LoopSummary(loop_id=loop_id, bars=0, orders=0, refused=0, last_bar=await _last_bar(home, loop_id),
                          recent=[])
    symbols = request.signals.symbols or []
    while request.max_bars is None or summary.bars < request.max_bars:
        control.report(0.0, _progress(summary))
        if request.collect and symbols and not home.settings.offline:
            await _collect(home, request, symbols)
        picked = await decide(home, request.signals)
        symbols = [d.symbol for d in picked]
        bar = max(d.time for d in picked).isoformat()
        if bar != summary.last_bar:
            actions = await act_on_bar(home, loop_id, request, picked)
            summary = _add(summary, actions)
            await (await desk_of(home)).valuation("paper")  # an equity snapshot per bar
            continue
        await _sleep(control, request.poll_seconds, summary)
    return summary


async def act_on_bar(home: "Home", loop_id: str, request: LoopRequest, picked) -> BarActions:
    desk = await desk_of(home)
    bar_time = max(d.time for d in picked)
    bar = {d.symbol: await _bar_signal(desk, d) for d in picked if d.time == bar_time and not math.isnan(d.close)}
    held = await _held(home, loop_id)
    account = await desk.valuation("paper")
    since = await _since_entry(home, loop_id, bar_time.isoformat())
    marks = {_perp(d.symbol): float(d.close) for d in picked if not math.isnan(d.close)}
    policy = _policy(home, request)
    halted = account.halted_until is not None and datetime.fromisoformat(account.halted_until) > datetime.now(UTC)
    exits, entries = decide_bar(policy, {_perp(s): b for s, b in bar.items()}, held, marks, since, account.equity,
                                halted)
    tag = f"{loop_id[-10:]}-{int(bar_time.timestamp())}"
    actions = BarActions(bar=bar_time.isoformat(), orders=[], exits={}, refused={})
    for symbol, reason in exits.items():
        await _exit(desk, home, loop_id, held[symbol], f"{tag}-{_slug(symbol)}-x", actions, reason)
    for e in entries:
        await _enter(desk, home, loop_id, e, bar_time.isoformat(), policy, f"{tag}-{_slug(e.symbol)}-e", actions)
    await _age(home, loop_id, {s for s in held if s not in actions.exits}, bar_time.isoformat())
    return actions


async def _since_entry(home: "Home", loop_id: str, bar: str) -> dict[str, int]:
    """Bars from each symbol's latest entry decision to `bar` (as the engine counts them), the same when a bar is
    acted on again after a restart: an entry made at `bar` itself is left out, so that its replay decides it again
    (its client id answers it, never repeats it)."""
    since = {}
    for r in await (await home.loops()).entries(loop_id):
        if r["last_bar"] < bar:
            since[r["symbol"]] = r["bars"] + 1
        elif r["bars"] > 0:  # this bar was acted on, and the count aged, before
            since[r["symbol"]] = r["bars"]
    return since


async def _exit(desk, home: "Home", loop_id: str, h: Held, client_id: str, actions: BarActions, reason: str) -> None:
    side = "sell" if h.side > 0 else "buy"
    placed = await _known(desk, client_id)
    if placed is not None:
        actions.orders.append(client_id)
    else:
        placed = await _place(desk, OrderRequest(symbol=h.symbol, side=side, quantity=h.quantity, reduce_only=True,
                                                 client_order_id=client_id), actions)
    if placed:
        actions.exits[h.symbol] = reason
        await (await home.loops()).closed(loop_id, h.symbol)


async def _enter(desk, home: "Home", loop_id: str, e: Entry, bar: str, policy: Policy, client_id: str,
                 actions: BarActions) -> None:
    order = await _known(desk, client_id)  # placed before a restart (sized then): adopt it, never resize it
    if order is not None:
        actions.orders.append(client_id)
    else:
        side = "buy" if e.side > 0 else "sell"
        placement = await _place(desk, OrderRequest(symbol=e.symbol, side=side, quantity=e.quantity,
                                                    client_order_id=client_id), actions)
        order = placement.order if placement else None
    if order is None:
        return
    loops = await home.loops()
    await loops.entered(loop_id, e.symbol, bar)  # the minimum holding time counts from here, as the engine's
    if not order.filled_quantity:
        return
    price = order.average_price
    stop = price - e.side * e.distance
    target = price + e.side * policy.target_distance(e.distance) if policy.take_profit_atr > 0 else None
    await loops.opened(loop_id, e.symbol, e.side, order.filled_quantity, stop, target, bar)


async def _known(desk, client_id: str):
    try:
        order = await desk.order(client_id)
    except NotFoundError:
        return None
    return None if order.status == "not_placed" else order


async def _place(desk, order: OrderRequest, actions: BarActions):
    try:
        placement = await desk.place(order)
    except (InputError, Refused) as refused:
        actions.refused[order.symbol] = str(refused)
        log.info("paper loop: %s %s refused: %s", order.side, order.symbol, refused)
        return None
    if order.client_order_id is not None:  # always: the loop names each order it places
        actions.orders.append(order.client_order_id)
    return placement


async def _bar_signal(desk, d) -> BarSignal:
    bars = await desk.prices.bars_after(_perp(d.symbol), d.time.isoformat())
    high, low = (float(bars["high"].iloc[0]), float(bars["low"].iloc[0])) if len(bars) else (d.close, d.close)
    atr = None if math.isnan(d.atr) else float(d.atr)
    return BarSignal(symbol=_perp(d.symbol), signal=int(d.signal), strength=float(d.strength), close=float(d.close),
                     high=high, low=low, atr=atr, fraction=float(d.fraction))


async def _held(home: "Home", loop_id: str) -> dict[str, Held]:
    rows = await (await home.loops()).positions(loop_id)
    return {r["symbol"]: Held(**{k: r[k] for k in Held.model_fields}) for r in rows}


async def _age(home: "Home", loop_id: str, symbols: set[str], bar: str) -> None:
    await (await home.loops()).age(loop_id, symbols, bar)


async def _last_bar(home: "Home", loop_id: str) -> str | None:
    return await (await home.loops()).last_bar(loop_id)


def decide_bar(policy: Policy, bar: dict[str, BarSignal], held: dict[str, Held], marks: dict[str, float],
               since_entry: dict[str, int], equity: float, halted: bool = False) -> tuple[dict[str, str], list[Entry]]:
    """The kernel on one bar of live signals: (exit reason per symbol, entries). Stops and take-profits met by the
    bar's range exit first (the position is then flat, as in the engine); `since_entry`: bars from each symbol's
    latest entry decision to this bar; `halted`: the account's daily loss stop holds (no entries, as the engine)."""
    from mcp_trader.policy import kernel  # compiled: loaded with the first bar, not with the tools

    symbols = sorted(bar.keys() | held.keys())
    exits = {s: EXIT_REASONS[r] for s, h in held.items() if s in bar and (r := _hit(h, bar[s])) >= 0}
    open_ = {s: h for s, h in held.items() if s not in exits}
    now = [bar.get(s) for s in symbols]
    reasons, sizes = np.full(len(symbols), -1, np.int64), np.zeros(len(symbols))
    kernel.decide(
        reasons, sizes,
        np.array([open_[s].side * open_[s].quantity if s in open_ else 0.0 for s in symbols]),
        np.array([marks.get(s, 0.0) for s in symbols]),
        np.array([open_[s].bars_held if s in open_ else 0 for s in symbols], dtype=np.int64),
        np.array([since_entry.get(s, NEVER) for s in symbols], dtype=np.int64),
        np.array([b.signal if b else 0 for b in now], dtype=np.int8),
        np.array([b.strength if b else np.nan for b in now]),
        np.array([b.fraction if b else 0.0 for b in now]),
        np.array([b.close if b else np.nan for b in now]),
        np.array([b.atr if b and b.atr is not None else np.nan for b in now]),
        float(equity), halted, *policy.numbers(),
    )
    exits |= {s: EXIT_REASONS[r] for s, r in zip(symbols, reasons, strict=True) if r >= 0}
    entries = [Entry(symbol=s, side=b.signal, quantity=float(q) * SIZE_MARGIN, distance=policy.limits.stop_atr * b.atr)
               for s, b, q in zip(symbols, now, sizes, strict=True) if q > 0 and b is not None and b.atr]
    return exits, sorted(entries, key=lambda e: -bar[e.symbol].strength)


def _hit(h: Held, now: BarSignal) -> int:
    from mcp_trader.policy import kernel

    return int(kernel.hit(float(h.side), h.stop, np.nan if h.target is None else h.target, now.high, now.low))


def _policy(home: "Home", request: LoopRequest) -> Policy:
    return Policy(limits=home.settings.limits, take_profit_atr=request.take_profit_atr,
                  max_hold_bars=request.max_hold_bars, min_hold_bars=_min_hold(request),
                  allow_short=request.allow_short)


def _min_hold(request: LoopRequest) -> int:
    """The backtest's default: none for a model, the shortest feature window's bars for the confluence rule."""
    if request.min_hold_bars is not None:
        return request.min_hold_bars
    if request.signals.strategy != "confluence":
        return 0
    from mcp_trader.features.spec import make_spec

    spec = make_spec(request.signals.timeframe or "1h")
    return spec.bars[spec.shortest]


async def _collect(home: "Home", request: LoopRequest, symbols: list[str]) -> None:
    from mcp_trader.data.collect import Collector
    from mcp_trader.data.models import CollectRequest

    try:
        await Collector(home).collect(CollectRequest(symbols=symbols, timeframes=[request.signals.timeframe or "1h"],
                                                     days=3))
    except Exception as error:  # a network hiccup must not end the loop: the next poll tries again
        log.warning("paper loop: collecting new bars failed: %s", error)


async def _sleep(control: JobControl, seconds: float, summary: LoopSummary) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        control.report(0.0, _progress(summary))  # raises Cancelled on stop_paper_trading
        await asyncio.sleep(min(0.2, seconds))


def _add(summary: LoopSummary, actions: BarActions) -> LoopSummary:
    return summary.model_copy(update={
        "bars": summary.bars + 1, "orders": summary.orders + len(actions.orders),
        "refused": summary.refused + len(actions.refused), "last_bar": actions.bar,
        "recent": [*summary.recent[-19:], actions]})


def _progress(summary: LoopSummary) -> str:
    return (f"paper loop: {summary.bars} bars acted on, {summary.orders} orders, {summary.refused} refused; "
            f"last bar {summary.last_bar or 'none yet'}")


def _perp(symbol: str) -> str:
    from mcp_trader.trading.desk import perpetual

    return perpetual(symbol)


def _slug(symbol: str) -> str:
    return symbol.split("/")[0]

