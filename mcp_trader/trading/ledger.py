"""The trading ledger in SQLite: order intents (written before they are sent), fills, positions, the account's cash,
funding and equity snapshots. Callers hold one transaction per state change (Database.transaction), so a crash
at any point leaves the ledger as it was before or after that change, never between."""

import json
import os
from typing import Any

import aiosqlite
from pydantic import BaseModel

from mcp_trader.store.db import Database, dumps
from mcp_trader.timefmt import now_iso
from mcp_trader.trading.accounting import Holding, book_fill
from mcp_trader.trading.orders import LIVE_STATES, Intent, Mode, Status, VenueFill, VenueOrder


class LedgerOrder(BaseModel):
    client_order_id: str
    mode: Mode
    symbol: str
    side: str
    type: str
    quantity: float
    price: float | None
    reduce_only: bool
    status: Status
    venue_order_id: str | None
    filled_quantity: float
    average_price: float | None
    fees: float
    reason: str | None
    reference_price: float
    reference_time: str
    created_at: str
    updated_at: str

    def intent(self) -> Intent:
        return Intent(
            client_order_id=self.client_order_id, mode=self.mode, symbol=self.symbol, side=self.side, type=self.type,
            quantity=self.quantity, price=self.price, reduce_only=self.reduce_only,
        )


class LedgerFill(BaseModel):
    trade_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    liquidity: str
    realized_pnl: float
    time: str


class Account(BaseModel):
    mode: Mode
    start_balance: float
    cash: float
    realized_pnl: float
    fees: float
    funding: float
    day: str | None
    day_start_equity: float | None
    halted_until: str | None
    halt_reason: str | None


class LedgerPosition(BaseModel):
    symbol: str
    quantity: float
    entry_price: float
    realized_pnl: float
    fees: float
    funding: float
    opened_at: str | None


class Ledger:
    def __init__(self, db: Database, start_balances: dict[str, float]):
        self.db = db
        self.start_balances = start_balances

    # --- reads (inside or outside a transaction) ---------------------------------------------
    async def account(self, conn: aiosqlite.Connection, mode: Mode) -> Account:
        row = await _one(conn, "SELECT * FROM accounts WHERE mode = ?", mode)
        if row is None:
            return Account(mode=mode, start_balance=self.start_balances[mode], cash=self.start_balances[mode],
                           realized_pnl=0, fees=0, funding=0, day=None, day_start_equity=None, halted_until=None,
                           halt_reason=None)
        return Account(**row)

    async def has_account(self, conn: aiosqlite.Connection, mode: Mode) -> bool:
        return await _one(conn, "SELECT 1 FROM accounts WHERE mode = ?", mode) is not None

    async def positions(self, conn: aiosqlite.Connection, mode: Mode) -> dict[str, LedgerPosition]:
        rows = await _all(conn, "SELECT * FROM positions WHERE mode = ? AND quantity != 0 ORDER BY symbol", mode)
        return {r["symbol"]: LedgerPosition(**r) for r in rows}

    async def order(self, conn: aiosqlite.Connection, client_order_id: str) -> LedgerOrder | None:
        row = await _one(conn, "SELECT * FROM orders WHERE client_order_id = ?", client_order_id)
        return _order(row) if row else None

    async def request_of(self, conn: aiosqlite.Connection, client_order_id: str) -> dict[str, Any]:
        row = await _one(conn, "SELECT request FROM orders WHERE client_order_id = ?", client_order_id)
        return json.loads(row["request"]) if row else {}

    async def live_orders(self, conn: aiosqlite.Connection, mode: Mode) -> list[LedgerOrder]:
        marks = ",".join("?" * len(LIVE_STATES))
        rows = await _all(conn, f"SELECT * FROM orders WHERE mode = ? AND status IN ({marks}) ORDER BY created_at",
                          mode, *LIVE_STATES)
        return [_order(r) for r in rows]

    async def orders(self, mode: Mode, since: str | None, statuses: tuple[str, ...] | None,
                     symbol: str | None, limit: int) -> list[LedgerOrder]:
        sql = "SELECT * FROM orders WHERE mode = ?"
        args: list[str] = [mode]
        if since:
            sql, args = sql + " AND created_at >= ?", [*args, since]
        if statuses:
            sql, args = sql + f" AND status IN ({','.join('?' * len(statuses))})", [*args, *statuses]
        if symbol:
            sql, args = sql + " AND symbol = ?", [*args, symbol]
        rows = await self.db.fetch_all(sql + " ORDER BY created_at DESC, rowid DESC LIMIT ?", *args, limit)
        return [_order(r) for r in rows]

    async def fills(self, mode: Mode, since: str | None = None, limit: int = 10_000) -> list[LedgerFill]:
        rows = await self.db.fetch_all(
            "SELECT * FROM fills WHERE mode = ? AND time >= ? ORDER BY time, rowid LIMIT ?", mode, since or "", limit)
        return [LedgerFill(**{k: v for k, v in r.items() if k != "mode"}) for r in rows]

    async def equity_history(self, mode: Mode, since: str | None = None) -> list[dict[str, Any]]:
        return await self.db.fetch_all(
            "SELECT time, equity, cash, unrealized_pnl, gross_notional FROM equity_snapshots "
            "WHERE mode = ? AND time >= ? ORDER BY time", mode, since or "")

    async def fills_by_symbol(self, conn: aiosqlite.Connection, mode: Mode, since: str | None
                              ) -> dict[str, dict[str, Any]]:
        """Per symbol, fills since `since` (all time without it): realised PnL, fees and their number."""
        rows = await _all(conn, "SELECT symbol, SUM(realized_pnl) AS realized, SUM(fee) AS fees, COUNT(*) AS n "
                                "FROM fills WHERE mode = ? AND time >= ? GROUP BY symbol ORDER BY symbol",
                          mode, since or "")
        return {r["symbol"]: r for r in rows}

    async def funding_by_symbol(self, conn: aiosqlite.Connection, mode: Mode, since: str | None) -> dict[str, float]:
        """Per symbol, funding paid since `since` (all time without it)."""
        rows = await _all(conn, "SELECT symbol, SUM(amount) AS paid FROM funding_payments WHERE mode = ? AND "
                                "time >= ? GROUP BY symbol", mode, since or "")
        return {r["symbol"]: r["paid"] for r in rows}

    # --- writes (the caller holds the transaction) --------------------------------------------
    async def insert_intent(self, conn: aiosqlite.Connection, intent: Intent, request: dict[str, Any],
                            risk: dict[str, Any] | None, reference_price: float, reference_time: str) -> None:
        now = now_iso()
        await conn.execute(
            "INSERT INTO orders (client_order_id, mode, symbol, side, type, quantity, price, reduce_only, status, "
            "filled_quantity, fees, request, risk, reference_price, reference_time, created_at, updated_at, "
            "owner_pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (client_order_id) DO UPDATE SET status = 'pending', quantity = excluded.quantity, "
            "price = excluded.price, risk = excluded.risk, reference_price = excluded.reference_price, "
            "reference_time = excluded.reference_time, reason = NULL, updated_at = excluded.updated_at, "
            "owner_pid = excluded.owner_pid",
            (intent.client_order_id, intent.mode, intent.symbol, intent.side, intent.type, intent.quantity,
             intent.price, int(intent.reduce_only), dumps(request), dumps(risk), reference_price, reference_time,
             now, now, os.getpid()),
        )

    async def sent_by_another_server(self, conn: aiosqlite.Connection, client_order_id: str) -> bool:
        """Whether a pending order is being sent right now by another, running server process on this home."""
        row = await _one(conn, "SELECT owner_pid FROM orders WHERE client_order_id = ?", client_order_id)
        pid = row["owner_pid"] if row else None
        return pid is not None and pid != os.getpid() and _alive(pid)

    async def set_status(self, conn: aiosqlite.Connection, client_order_id: str, status: Status,
                         reason: str | None = None, only_from: tuple[str, ...] | None = None) -> None:
        """Set an order's state; with only_from, only while it is still in one of those states (another process may
        have recorded the venue's answer since the caller read it)."""
        sql = "UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE client_order_id = ?"
        if only_from:
            sql += f" AND status IN ({','.join('?' * len(only_from))})"
        await conn.execute(sql, (status, reason, now_iso(), client_order_id, *(only_from or ())))

    async def record(self, conn: aiosqlite.Connection, mode: Mode, venue: VenueOrder) -> list[LedgerFill]:
        """Bring an order in line with the venue's view: its state, and every fill not booked yet."""
        order = await self.order(conn, venue.client_order_id)
        if order is None:
            raise LookupError(f"no ledger order {venue.client_order_id}")
        booked = []
        for fill in venue.fills:
            if await _one(conn, "SELECT 1 FROM fills WHERE mode = ? AND trade_id = ?", mode, fill.trade_id):
                continue
            booked.append(await self._book(conn, order, fill))
        fees = await _one(conn, "SELECT COALESCE(SUM(fee), 0) AS f, COALESCE(SUM(quantity), 0) AS q, "
                                "COALESCE(SUM(quantity * price), 0) AS v FROM fills WHERE client_order_id = ?",
                          venue.client_order_id)
        if fees is None:  # an aggregate query always answers one row
            raise RuntimeError("the fills total returned no row")
        average = fees["v"] / fees["q"] if fees["q"] else venue.average_price
        await conn.execute(
            "UPDATE orders SET status = ?, venue_order_id = COALESCE(?, venue_order_id), filled_quantity = ?, "
            "average_price = ?, fees = ?, reason = COALESCE(?, reason), updated_at = ? WHERE client_order_id = ?",
            (venue.status, venue.venue_order_id, max(fees["q"], venue.filled_quantity), average, fees["f"],
             venue.reason, now_iso(), venue.client_order_id),
        )
        return booked

    async def _book(self, conn: aiosqlite.Connection, order: LedgerOrder, fill: VenueFill) -> LedgerFill:
        mode, symbol = order.mode, order.symbol
        row = await _one(conn, "SELECT * FROM positions WHERE mode = ? AND symbol = ?", mode, symbol)
        held = Holding(row["quantity"], row["entry_price"]) if row else Holding()
        signed = fill.quantity if order.side == "buy" else -fill.quantity
        booked = book_fill(held, signed, fill.price, fill.fee)
        now = now_iso()
        opened = (row or {}).get("opened_at") if held.quantity and booked.holding.quantity else fill.time
        await conn.execute(
            "INSERT INTO positions (mode, symbol, quantity, entry_price, realized_pnl, fees, funding, opened_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (mode, symbol) DO UPDATE SET "
            "quantity = excluded.quantity, entry_price = excluded.entry_price, "
            "realized_pnl = positions.realized_pnl + excluded.realized_pnl, fees = positions.fees + excluded.fees, "
            "opened_at = excluded.opened_at, updated_at = excluded.updated_at",
            (mode, symbol, booked.holding.quantity, booked.holding.entry_price, booked.realized_pnl, fill.fee,
             opened if booked.holding.quantity else None, now),
        )
        await self._move_cash(conn, mode, booked.cash_change, realized=booked.realized_pnl, fees=fill.fee)
        await conn.execute(
            "INSERT INTO fills (mode, trade_id, client_order_id, symbol, side, quantity, price, fee, liquidity, "
            "realized_pnl, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mode, fill.trade_id, order.client_order_id, symbol, order.side, fill.quantity, fill.price, fill.fee,
             fill.liquidity, booked.realized_pnl, fill.time),
        )
        return LedgerFill(trade_id=fill.trade_id, client_order_id=order.client_order_id, symbol=symbol,
                          side=order.side, quantity=fill.quantity, price=fill.price, fee=fill.fee,
                          liquidity=fill.liquidity, realized_pnl=booked.realized_pnl, time=fill.time)

    async def book_funding(self, conn: aiosqlite.Connection, mode: Mode, symbol: str, time: str, rate: float,
                           quantity: float, price: float) -> float | None:
        """A funding settlement on a held position: longs pay a positive rate. None when already booked."""
        if await _one(conn, "SELECT 1 FROM funding_payments WHERE mode = ? AND symbol = ? AND time = ?",
                      mode, symbol, time):
            return None
        amount = quantity * price * rate  # paid (positive) or received (negative)
        await conn.execute("INSERT INTO funding_payments VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (mode, symbol, time, rate, quantity, price, amount))
        await conn.execute("UPDATE positions SET funding = funding + ? WHERE mode = ? AND symbol = ?",
                           (amount, mode, symbol))
        await self._move_cash(conn, mode, -amount, funding=amount)
        return amount

    async def last_funding_time(self, conn: aiosqlite.Connection, mode: Mode, symbol: str) -> str | None:
        row = await _one(conn, "SELECT MAX(time) AS t FROM funding_payments WHERE mode = ? AND symbol = ?",
                         mode, symbol)
        return row["t"] if row else None

    async def save_account(self, conn: aiosqlite.Connection, account: Account) -> None:
        now = now_iso()
        await conn.execute(
            "INSERT INTO accounts (mode, start_balance, cash, realized_pnl, fees, funding, day, day_start_equity, "
            "halted_until, halt_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (mode) DO UPDATE SET cash = excluded.cash, realized_pnl = excluded.realized_pnl, "
            "fees = excluded.fees, funding = excluded.funding, day = excluded.day, "
            "day_start_equity = excluded.day_start_equity, halted_until = excluded.halted_until, "
            "halt_reason = excluded.halt_reason, updated_at = excluded.updated_at",
            (account.mode, account.start_balance, account.cash, account.realized_pnl, account.fees, account.funding,
             account.day, account.day_start_equity, account.halted_until, account.halt_reason, now, now),
        )

    async def snapshot(self, conn: aiosqlite.Connection, mode: Mode, time: str, equity: float, cash: float,
                       unrealized: float, gross: float) -> None:
        await conn.execute("INSERT OR REPLACE INTO equity_snapshots VALUES (?, ?, ?, ?, ?, ?)",
                           (mode, time, equity, cash, unrealized, gross))

    async def note_reconciliation(self, conn: aiosqlite.Connection, mode: Mode, report: dict[str, Any]) -> None:
        await conn.execute("INSERT INTO reconciliations (mode, time, report) VALUES (?, ?, ?)",
                           (mode, now_iso(), dumps(report)))

    async def save_confirmation(self, conn: aiosqlite.Connection, token_hash: str, client_order_id: str,
                                payload: str, expires_at: str) -> None:
        await conn.execute("INSERT INTO confirmations VALUES (?, ?, ?, ?, NULL, ?)",
                           (token_hash, client_order_id, payload, expires_at, now_iso("auto")))

    async def confirmation(self, conn: aiosqlite.Connection, token_hash: str) -> dict[str, Any] | None:
        return await _one(conn, "SELECT * FROM confirmations WHERE token_hash = ?", token_hash)

    async def use_confirmation(self, conn: aiosqlite.Connection, token_hash: str) -> None:
        await conn.execute("UPDATE confirmations SET used_at = ? WHERE token_hash = ?",
                           (now_iso(), token_hash))

    async def _move_cash(self, conn: aiosqlite.Connection, mode: Mode, change: float, realized: float = 0.0,
                         fees: float = 0.0, funding: float = 0.0) -> None:
        account = await self.account(conn, mode)
        await self.save_account(conn, account.model_copy(update={
            "cash": account.cash + change, "realized_pnl": account.realized_pnl + realized,
            "fees": account.fees + fees, "funding": account.funding + funding,
        }))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _order(row: dict[str, Any]) -> LedgerOrder:
    return LedgerOrder(**{k: v for k, v in row.items() if k in LedgerOrder.model_fields})


async def _all(conn: aiosqlite.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with conn.execute(sql, params) as cursor:
        return [dict(r) for r in await cursor.fetchall()]


async def _one(conn: aiosqlite.Connection, sql: str, *params: Any) -> dict[str, Any] | None:
    rows = await _all(conn, sql, *params)
    return rows[0] if rows else None
