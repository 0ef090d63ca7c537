"""A home directory's state: settings, the candle store and the database, opened once."""

import asyncio

from mcp_trader.config import Settings
from mcp_trader.store.candles import CandleStore
from mcp_trader.store.catalog import Catalog
from mcp_trader.store.db import Database


class Home:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.candles = CandleStore(settings.candles_dir)
        self._db: Database | None = None
        self._lock = asyncio.Lock()

    async def db(self) -> Database:
        """The database, opened (and migrated) on first use so that start-up stays fast."""
        async with self._lock:
            if self._db is None:
                self._db = await Database(self.settings.db_path).open()
            return self._db

    async def catalog(self) -> Catalog:
        return Catalog(await self.db())

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
