"""A home directory's state: settings, the candle store and the database, opened once."""

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING

from mcp_trader.config import Settings
from mcp_trader.store.catalog import Catalog
from mcp_trader.store.db import Database

if TYPE_CHECKING:
    from mcp_trader.jobs import Jobs
    from mcp_trader.store.candles import CandleStore
    from mcp_trader.trading.desk import Desk


class Home:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._db: Database | None = None
        self._jobs: Jobs | None = None
        self._desk: Desk | None = None
        self._lock = asyncio.Lock()

    @cached_property
    def candles(self) -> "CandleStore":
        from mcp_trader.store.candles import CandleStore  # pandas and pyarrow load on first use, not at start

        return CandleStore(self.settings.candles_dir)

    async def db(self) -> Database:
        """The database, opened (and migrated) on first use so that start-up stays fast."""
        async with self._lock:
            if self._db is None:
                self._db = await Database(self.settings.db_path).open()
            return self._db

    async def catalog(self) -> Catalog:
        return Catalog(await self.db())

    async def jobs(self) -> "Jobs":
        """The job runner; on first use, jobs that a stopped server left running are marked interrupted."""
        from mcp_trader.jobs import Jobs

        db = await self.db()
        if self._jobs is None:
            self._jobs = Jobs(db)
            await self._jobs.recover()
        return self._jobs

    def desk(self) -> "Desk":
        """The trading desk (paper and live orders, the ledger), made on first use."""
        from mcp_trader.trading.desk import Desk

        if self._desk is None:
            self._desk = Desk(self)
        return self._desk

    async def close(self) -> None:
        if self._desk is not None:
            await self._desk.close()
            self._desk = None
        if self._jobs is not None:
            await self._jobs.close()
            self._jobs = None
        if self._db is not None:
            await self._db.close()
            self._db = None
