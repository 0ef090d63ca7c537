"""An account marked to market: equity, cash, positions, realised and unrealised PnL, fees, funding, per symbol, and
the ledger's own balance check (cash + Σ quantity × entry = start + realised − fees − funding)."""


import aiosqlite
from pydantic import BaseModel, Field

from mcp_trader.policy.limits import RiskLimits
from mcp_trader.timefmt import now_iso
from mcp_trader.trading.ledger import Ledger
from mcp_trader.trading.orders import Mode

BALANCE_TOLERANCE = 1e-6  # USDT, relative to the start balance


class PositionView(BaseModel):
    symbol: str
    side: str
    quantity: float
    entry_price: float
    mark_price: float
    notional: float
    unrealized_pnl: float
    realized_pnl: float
    fees: float
    funding: float
    opened_at: str | None


class SymbolPnl(BaseModel):
    symbol: str
    realized_pnl: float
    fees: float
    funding: float
    fills: int


class Valuation(BaseModel):
    mode: Mode
    as_of: str
    start_balance: float
    cash: float
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    funding: float
    total_pnl: float
    return_pct: float
    gross_notional: float
    leverage: float
    positions: list[PositionView]
    since: str | None
    per_symbol: list[SymbolPnl]  # realised PnL, fees and funding since `since` (all time without it)
    ledger_balanced: bool
    ledger_difference: float
    day_start_equity: float | None = None
    halted_until: str | None = None
    halt_reason: str | None = None
    limits: RiskLimits | None = None
    notes: list[str] = Field(default_factory=list)


async def value(ledger: Ledger, conn: aiosqlite.Connection, mode: Mode, marks: dict[str, float],
                since: str | None) -> Valuation:
    account = await ledger.account(conn, mode)
    positions = [_position(p, marks.get(s, p.entry_price)) for s, p in (await ledger.positions(conn, mode)).items()]
    unrealized = sum(p.unrealized_pnl for p in positions)
    at_cost = sum(p.quantity * p.entry_price for p in positions)
    equity = account.cash + sum(p.quantity * p.mark_price for p in positions)
    difference = account.cash + at_cost - (account.start_balance + account.realized_pnl - account.fees
                                           - account.funding)
    gross = sum(abs(p.notional) for p in positions)
    total = equity - account.start_balance
    return Valuation(
        mode=mode, as_of=now_iso(), start_balance=account.start_balance,
        cash=account.cash, equity=equity, realized_pnl=account.realized_pnl, unrealized_pnl=unrealized,
        fees=account.fees, funding=account.funding, total_pnl=total,
        return_pct=100 * total / account.start_balance if account.start_balance else 0.0,
        gross_notional=gross, leverage=gross / equity if equity > 0 else 0.0, positions=positions, since=since,
        per_symbol=await _per_symbol(ledger, conn, mode, since),
        ledger_balanced=abs(difference) <= BALANCE_TOLERANCE * max(1.0, account.start_balance),
        ledger_difference=difference,
    )


def _position(p, mark: float) -> PositionView:
    return PositionView(
        symbol=p.symbol, side="long" if p.quantity > 0 else "short", quantity=p.quantity, entry_price=p.entry_price,
        mark_price=mark, notional=p.quantity * mark, unrealized_pnl=p.quantity * (mark - p.entry_price),
        realized_pnl=p.realized_pnl, fees=p.fees, funding=p.funding, opened_at=p.opened_at,
    )


async def _per_symbol(ledger: Ledger, conn: aiosqlite.Connection, mode: Mode, since: str | None) -> list[SymbolPnl]:
    fills = await ledger.fills_by_symbol(conn, mode, since)
    funding = await ledger.funding_by_symbol(conn, mode, since)
    return [SymbolPnl(symbol=s, realized_pnl=(fills.get(s) or {}).get("realized") or 0.0,
                      fees=(fills.get(s) or {}).get("fees") or 0.0, funding=funding.get(s, 0.0),
                      fills=(fills.get(s) or {}).get("n") or 0)
            for s in sorted(set(fills) | set(funding))]
