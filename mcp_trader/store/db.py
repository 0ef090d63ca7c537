"""The server's SQLite state, with numbered migrations so a newer release opens an older home."""

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

BUSY_TIMEOUT_S = 30.0  # how long a write waits for another connection's (or process's) transaction

# Append only: a home records how many of these it has applied (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE datasets (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        market TEXT NOT NULL,
        symbol TEXT NOT NULL,
        timeframe TEXT NOT NULL,
        path TEXT NOT NULL,
        rows INTEGER NOT NULL,
        first_time TEXT,
        last_time TEXT,
        content_hash TEXT NOT NULL,
        synthetic INTEGER NOT NULL,
        provenance TEXT NOT NULL,
        quality TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX datasets_by_symbol ON datasets (symbol, timeframe);
    CREATE TABLE collections (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        request TEXT NOT NULL,
        result TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE feature_sets (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        timeframe TEXT NOT NULL,
        symbols TEXT NOT NULL,
        record TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE models (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        variant TEXT NOT NULL,
        timeframe TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        progress REAL NOT NULL,
        message TEXT NOT NULL,
        params TEXT NOT NULL,
        result TEXT,
        error TEXT,
        error_field TEXT,
        pid INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE INDEX jobs_by_status ON jobs (status);
    """,
    """
    CREATE TABLE backtests (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        strategy TEXT NOT NULL,
        model_id TEXT,
        record TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE exports (
        id TEXT PRIMARY KEY,
        model_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX exports_by_model ON exports (model_id);
    CREATE TABLE studies (
        name TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        storage TEXT NOT NULL,
        record TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE accounts (
        mode TEXT PRIMARY KEY,
        start_balance REAL NOT NULL,
        cash REAL NOT NULL,
        realized_pnl REAL NOT NULL,
        fees REAL NOT NULL,
        funding REAL NOT NULL,
        day TEXT,
        day_start_equity REAL,
        halted_until TEXT,
        halt_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        mode TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        type TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL,
        reduce_only INTEGER NOT NULL,
        status TEXT NOT NULL,
        venue_order_id TEXT,
        filled_quantity REAL NOT NULL,
        average_price REAL,
        fees REAL NOT NULL,
        reason TEXT,
        request TEXT NOT NULL,
        risk TEXT,
        reference_price REAL NOT NULL,
        reference_time TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        owner_pid INTEGER
    );
    CREATE INDEX orders_by_mode_status ON orders (mode, status);
    CREATE TABLE fills (
        mode TEXT NOT NULL,
        trade_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL NOT NULL,
        fee REAL NOT NULL,
        liquidity TEXT NOT NULL,
        realized_pnl REAL NOT NULL,
        time TEXT NOT NULL,
        PRIMARY KEY (mode, trade_id)
    );
    CREATE INDEX fills_by_time ON fills (mode, time);
    CREATE TABLE positions (
        mode TEXT NOT NULL,
        symbol TEXT NOT NULL,
        quantity REAL NOT NULL,
        entry_price REAL NOT NULL,
        realized_pnl REAL NOT NULL,
        fees REAL NOT NULL,
        funding REAL NOT NULL,
        opened_at TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (mode, symbol)
    );
    CREATE TABLE funding_payments (
        mode TEXT NOT NULL,
        symbol TEXT NOT NULL,
        time TEXT NOT NULL,
        rate REAL NOT NULL,
        quantity REAL NOT NULL,
        price REAL NOT NULL,
        amount REAL NOT NULL,
        PRIMARY KEY (mode, symbol, time)
    );
    CREATE TABLE equity_snapshots (
        mode TEXT NOT NULL,
        time TEXT NOT NULL,
        equity REAL NOT NULL,
        cash REAL NOT NULL,
        unrealized_pnl REAL NOT NULL,
        gross_notional REAL NOT NULL,
        PRIMARY KEY (mode, time)
    );
    CREATE TABLE confirmations (
        token_hash TEXT PRIMARY KEY,
        client_order_id TEXT NOT NULL,
        intent TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE loop_positions (
        loop_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side INTEGER NOT NULL,
        quantity REAL NOT NULL,
        stop REAL NOT NULL,
        target REAL,
        bars_held INTEGER NOT NULL,
        last_bar TEXT NOT NULL,
        PRIMARY KEY (loop_id, symbol)
    );
    CREATE TABLE reconciliations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        mode TEXT NOT NULL,
        time TEXT NOT NULL,
        report TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE loop_entries (
        loop_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        last_bar TEXT NOT NULL,
        bars INTEGER NOT NULL,
        PRIMARY KEY (loop_id, symbol)
    );
    """,
)


class Database:
    def __init__(self, path: Path):
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._writing = asyncio.Lock()  # one connection: concurrent tasks must not interleave BEGIN … COMMIT

    async def open(self) -> "Database":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        self._conn.row_factory = aiosqlite.Row
        try:
            await self._busy_retried("PRAGMA journal_mode=WAL")  # another process may be opening it too
            await self._conn.execute("PRAGMA foreign_keys=ON")
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        if row is None:  # SQLite always answers this pragma
            raise RuntimeError("PRAGMA user_version returned no row")
        return int(row[0])

    async def _migrate(self) -> None:
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this release knows "
                f"({len(MIGRATIONS)}); upgrade mcp-trader"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            # executescript would commit mid-way; run statements inside one explicit transaction.
            async with self.transaction() as conn:
                if await self.schema_version() >= version:
                    continue  # another process opening this home at the same time applied it first
                for statement in filter(str.strip, script.split(";")):
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {version}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._writing:
            await self._busy_retried("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.rollback()
                raise
            await self.conn.commit()

    async def _busy_retried(self, sql: str) -> None:
        """A lock-taking statement (BEGIN IMMEDIATE, the journal mode), retried while SQLite answers busy at once. In
        WAL mode a connection that still holds a read snapshot older than another process's commit (another task's
        read, open on this shared connection between its execute and its fetch) is refused the write lock without
        the busy timeout's wait; once that read is done, the retry gets the lock."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + BUSY_TIMEOUT_S, 0.001
        while True:
            try:
                await self.conn.execute(sql)
                return
            except sqlite3.OperationalError as error:
                if "database is locked" not in str(error) or loop.time() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.05)

    async def fetch_all(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        async with self.conn.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def fetch_one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        rows = await self.fetch_all(sql, *params)
        return rows[0] if rows else None


def exports_read_only(path: Path) -> list[tuple[str, str, str, str]]:
    """The exports index (id, model id, created at, record), newest first, read with the standard library and
    read-only, as a health probe must; [] before the table exists. Raises sqlite3.Error when it cannot be read."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "exports" not in tables:
            return []
        return db.execute("SELECT id, model_id, created_at, record FROM exports ORDER BY created_at DESC").fetchall()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
