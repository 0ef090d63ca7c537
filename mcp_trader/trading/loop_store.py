"""The paper loops' own state in SQLite: per loop, the positions it holds (side, quantity, stop, target, bars held)
and each symbol's latest entry decision (bars since), both aged once per bar."""

from typing import Any

from mcp_trader.store.db import Database


class LoopStore:
    def __init__(self, db: Database):
        self.db = db

    async def entries(self, loop_id: str) -> list[dict[str, Any]]:
        return await self.db.fetch_all("SELECT * FROM loop_entries WHERE loop_id = ?", loop_id)

    async def positions(self, loop_id: str) -> list[dict[str, Any]]:
        return await self.db.fetch_all("SELECT * FROM loop_positions WHERE loop_id = ?", loop_id)

    async def last_bar(self, loop_id: str) -> str | None:
        row = await self.db.fetch_one("SELECT MAX(last_bar) AS b FROM loop_positions WHERE loop_id = ?", loop_id)
        return row["b"] if row else None

    async def entered(self, loop_id: str, symbol: str, bar: str) -> None:
        """An entry decided at `bar`: the minimum holding time counts from here."""
        async with self.db.transaction() as conn:
            await conn.execute("INSERT INTO loop_entries VALUES (?, ?, ?, 0) ON CONFLICT (loop_id, symbol) DO UPDATE "
                               "SET last_bar = excluded.last_bar, bars = 0", (loop_id, symbol, bar))

    async def opened(self, loop_id: str, symbol: str, side: int, quantity: float, stop: float, target: float | None,
                     bar: str) -> None:
        """A filled entry; one opened before (a bar acted on again) stays as it was."""
        async with self.db.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO loop_positions VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                               (loop_id, symbol, side, quantity, stop, target, bar))

    async def closed(self, loop_id: str, symbol: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM loop_positions WHERE loop_id = ? AND symbol = ?", (loop_id, symbol))

    async def age(self, loop_id: str, symbols: set[str], bar: str) -> None:
        """Entries, and the positions of `symbols`, one bar older: once per bar, even when it is acted on again."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE loop_entries SET bars = bars + 1, last_bar = ? WHERE loop_id = ? "
                               "AND last_bar < ?", (bar, loop_id, bar))
            for symbol in symbols:
                await conn.execute("UPDATE loop_positions SET bars_held = bars_held + 1, last_bar = ? "
                                   "WHERE loop_id = ? AND symbol = ? AND last_bar < ?", (bar, loop_id, symbol, bar))
