"""Position arithmetic, as the backtest engine keeps it: cash pays for what is bought and receives what is sold,
a position is carried at its average entry price, and realised PnL is booked when a position shrinks.

So at all times: cash + Σ quantity × entry price = start + realised PnL − fees − funding paid,
and equity = cash + Σ quantity × mark price.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Holding:
    quantity: float = 0.0  # signed
    entry_price: float = 0.0


@dataclass(frozen=True)
class Booked:
    holding: Holding
    cash_change: float
    realized_pnl: float


def book_fill(held: Holding, signed_quantity: float, price: float, fee: float) -> Booked:
    """Apply one fill (positive quantity buys) to a holding."""
    q0, dq = held.quantity, signed_quantity
    cash_change = -dq * price - fee
    if q0 == 0 or (q0 > 0) == (dq > 0):
        q1 = _clean(q0 + dq)
        entry = (q0 * held.entry_price + dq * price) / q1
        return Booked(Holding(q1, entry), cash_change, 0.0)
    closed = min(abs(dq), abs(q0))
    realized = closed * (price - held.entry_price) * (1 if q0 > 0 else -1)
    q1 = _clean(q0 + dq)
    if q1 == 0:
        return Booked(Holding(), cash_change, realized)
    entry = held.entry_price if (q1 > 0) == (q0 > 0) else price  # flipped: the rest opened at this fill
    return Booked(Holding(q1, entry), cash_change, realized)


def _clean(quantity: float) -> float:
    """Quantities to 12 decimals (far below any venue's step), so float dust never leaves a phantom position."""
    return round(quantity, 12) + 0.0
