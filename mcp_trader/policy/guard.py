"""The risk guard: every order, paper or live, passes it. Its limits come from Settings only (no trading tool argument
reaches them); a backtest applies the same limits in its sizing and its daily loss stop (mcp_trader.policy.kernel).
An order that only shrinks positions is always allowed; one that adds risk must keep within risk per trade, notional
per order, open positions, leverage, and is refused while the daily loss stop holds."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel

from mcp_trader.errors import InputError, Refused
from mcp_trader.policy.limits import RiskLimits


class Order(Protocol):
    """What the guard reads of an order (mcp_trader.trading.orders.Intent is one). Read-only: Intent is frozen."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Literal["buy", "sell"]: ...
    @property
    def quantity(self) -> float: ...
    @property
    def reduce_only(self) -> bool: ...


class RiskFigures(BaseModel):
    """What an order does to the account, next to the limits it was checked against."""

    notional: float
    added_notional: float  # the part that opens or grows a position
    risk: float | None  # USDT lost on the added part if a stop_atr × ATR stop is hit
    risk_fraction: float | None
    open_positions_after: int
    gross_notional_after: float
    leverage_after: float
    equity: float
    day_loss_fraction: float
    reduces_only: bool
    limits: RiskLimits


class RiskRejected(Refused):
    """An order over a limit: which limit, the order's figure, the limit, and by how much it is over."""

    def __init__(self, limit: str, figure: float, allowed: float, unit: str, detail: str):
        self.limit, self.figure, self.allowed = limit, figure, allowed
        over = f" by {number(figure - allowed)} {unit}".rstrip() if figure > allowed else ""
        super().__init__(f"risk limit {limit}: {detail} {number(figure)} {unit} exceeds the limit {number(allowed)} "
                         f"{unit}{over}".replace("  ", " "))


def number(value: float) -> str:
    """Figures as a person reads them: thousands separated, cents from 100 up, six significant digits below."""
    return f"{value:,.2f}".removesuffix(".00") if abs(value) >= 100 else f"{value:.6g}"


@dataclass(frozen=True)
class Book:
    """The account as the guard sees it: signed quantities (positions plus orders still working), marks, equity."""

    quantities: dict[str, float]
    marks: dict[str, float]
    equity: float
    day_start_equity: float
    halted_until: datetime | None
    positions: dict[str, float] | None = None  # held positions alone; None: the quantities hold no working orders
    working: dict[str, tuple[float, float]] | None = None  # per symbol: buy and sell quantities still working


def check(limits: RiskLimits, intent: Order, price: float, atr: float | None, book: Book,
          now: datetime) -> RiskFigures:
    held = book.quantities.get(intent.symbol, 0.0)
    signed = intent.quantity if intent.side == "buy" else -intent.quantity
    after = held + signed
    # Only a held position can be reduced (a working order may never fill), and an order that reduces it is exempt
    # from the limits only if it shrinks the book with the working orders too (they may all fill).
    position = held if book.positions is None else book.positions.get(intent.symbol, 0.0)
    then = position + signed
    reduces_position = _towards_zero(position, then)
    reducing = reduces_position and _towards_zero(held, after)
    if intent.reduce_only and not reduces_position:
        raise InputError("reduce_only", f"the order would take {intent.symbol}'s position from {position:g} to "
                                        f"{then:g}, not towards zero", f"a {'sell' if position > 0 else 'buy'} of "
                                        f"at most {abs(position):g}" if position else
                         "reduce_only only on a symbol with a position")
    added = 0.0 if reducing else max(0.0, _added(held, after), _added(position, then))
    figures = _figures(limits, intent, price, atr, book, after, added, reducing)
    if not reducing:
        _check_adding(limits, figures, intent, book, now)
    return figures


def _towards_zero(before: float, after: float) -> bool:
    return abs(after) <= abs(before) + 1e-12 and (after == 0 or (after > 0) == (before > 0))


def _added(before: float, after: float) -> float:
    """The part of a move from `before` to `after` that opens or grows a position."""
    return abs(after) - (abs(before) if (after > 0) == (before > 0) else 0.0)


def _figures(limits: RiskLimits, intent: Order, price: float, atr: float | None, book: Book, after: float,
             added: float, reducing: bool) -> RiskFigures:
    exposure = _exposure(book, intent)
    marks = {**book.marks, intent.symbol: price}
    gross = sum(q * marks.get(s, 0.0) for s, q in exposure.items())
    risk = None if atr is None or not atr > 0 else added * limits.stop_atr * atr
    equity = book.equity
    return RiskFigures(
        notional=intent.quantity * price, added_notional=added * price, risk=risk,
        risk_fraction=None if risk is None or equity <= 0 else risk / equity,
        open_positions_after=sum(1 for q in exposure.values() if q > 1e-12),
        gross_notional_after=gross, leverage_after=gross / equity if equity > 0 else float("inf"), equity=equity,
        day_loss_fraction=max(0.0, 1 - equity / book.day_start_equity) if book.day_start_equity > 0 else 0.0,
        reduces_only=reducing, limits=limits,
    )


def _exposure(book: Book, intent: Order) -> dict[str, float]:
    """Each symbol's largest position over any set of its working orders (this one included) filling, in any order:
    working orders may fill or not, so a working order that would close a position does not free its slot or its
    notional before it fills, and one that would open a position takes them at once."""
    held = book.quantities if book.positions is None else book.positions
    out = {}
    for symbol in held.keys() | book.quantities.keys() | (book.working or {}).keys() | {intent.symbol}:
        position = held.get(symbol, 0.0)
        if book.working is not None:
            buys, sells = book.working.get(symbol, (0.0, 0.0))
        else:
            net = book.quantities.get(symbol, 0.0) - position
            buys, sells = max(net, 0.0), max(-net, 0.0)
        if symbol == intent.symbol:
            buys, sells = (buys + intent.quantity, sells) if intent.side == "buy" else (buys, sells + intent.quantity)
        out[symbol] = max(abs(position + buys), abs(position - sells))
    return out


def _check_adding(limits: RiskLimits, f: RiskFigures, intent: Order, book: Book, now: datetime) -> None:
    if book.halted_until is not None and now < book.halted_until:
        raise RiskRejected("daily_loss_limit", f.day_loss_fraction * 100, limits.daily_loss_limit * 100, "%",
                           f"new risk is halted until {book.halted_until.isoformat()} (only orders that reduce "
                           "positions pass, or a manual reset: `mcp-trader reset-daily-stop`); today's loss")
    if f.notional > limits.max_order_notional:
        raise RiskRejected("max_order_notional", f.notional, limits.max_order_notional, "USDT",
                           f"{intent.symbol} order notional")
    if f.open_positions_after > limits.max_positions:
        raise RiskRejected("max_positions", f.open_positions_after, limits.max_positions, "positions",
                           "open positions (orders still working included) would be")
    if f.leverage_after > limits.max_leverage:
        raise RiskRejected("max_leverage", f.leverage_after, limits.max_leverage, "× equity",
                           f"gross notional {f.gross_notional_after:,.2f} USDT would be")
    if f.risk_fraction is None:
        raise RiskRejected("risk_per_trade", float("inf"), limits.risk_per_trade * 100, "%",
                           f"no ATR is known for {intent.symbol}, so the order's risk cannot be measured; risk")
    if f.risk_fraction > limits.risk_per_trade:
        raise RiskRejected("risk_per_trade", f.risk_fraction * 100, limits.risk_per_trade * 100, "% of equity",
                           f"a {limits.stop_atr:g} × ATR stop would lose {f.risk:,.2f} USDT, that is")


def halt_if_breached(limits: RiskLimits, equity: float, day_start_equity: float, now: datetime) -> datetime | None:
    """When today's loss reaches the limit: new risk halts until the next UTC midnight."""
    if day_start_equity > 0 and 1 - equity / day_start_equity >= limits.daily_loss_limit:
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return None
