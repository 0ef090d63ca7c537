"""A home directory's state: settings, the candle store, the database and its repositories, opened once.

Repository modules are imported on first use, so that start-up stays fast."""

import asyncio
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING

from mcp_trader.config import Settings
from mcp_trader.store.catalog import Catalog
from mcp_trader.store.db import Database

if TYPE_CHECKING:
    from mcp_trader.backtest.store import RunStore
    from mcp_trader.data.store import CandleStore
    from mcp_trader.export.store import ExportStore
    from mcp_trader.features.store import FeatureStore
    from mcp_trader.jobs import Jobs
    from mcp_trader.models.registry import ModelRegistry
    from mcp_trader.optimize.store import StudyIndex
    from mcp_trader.trading.ledger import Ledger
    from mcp_trader.trading.loop_store import LoopStore


class Home:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._db: Database | None = None
        self._jobs: Jobs | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._lock = asyncio.Lock()

    @cached_property
    def candles(self) -> "CandleStore":
        from mcp_trader.data.store import CandleStore  # pandas and pyarrow load on first use, not at start

        return CandleStore(self.settings.candles_dir)

    async def db(self) -> Database:
        """The database, opened (and migrated) on first use so that start-up stays fast."""
        async with self._lock:
            if self._db is None:
                self._db = await Database(self.settings.db_path).open()
            return self._db

    async def catalog(self) -> Catalog:
        return Catalog(await self.db())

    async def features(self) -> "FeatureStore":
        from mcp_trader.features.store import FeatureStore

        return FeatureStore(self.settings.features_dir, await self.db())

    async def models(self) -> "ModelRegistry":
        from mcp_trader.models.registry import ModelRegistry

        return ModelRegistry(self.settings.models_dir, await self.db())

    async def backtests(self) -> "RunStore":
        from mcp_trader.backtest.store import RunStore

        return RunStore(self.settings.backtests_dir, await self.db())

    async def exports(self) -> "ExportStore":
        from mcp_trader.export.store import ExportStore

        return ExportStore(self.settings.exports_dir, await self.db())

    async def studies(self) -> "StudyIndex":
        from mcp_trader.optimize.store import StudyIndex

        return StudyIndex(await self.db())

    async def loops(self) -> "LoopStore":
        from mcp_trader.trading.loop_store import LoopStore

        return LoopStore(await self.db())

    async def ledger(self) -> "Ledger":
        from mcp_trader.trading.ledger import Ledger

        return Ledger(await self.db(), {"paper": self.settings.paper_balance, "live": 0.0})

    async def jobs(self, recover: bool = True) -> "Jobs":
        """The job runner; on first use, jobs that a stopped server left running are marked interrupted. With
        recover=False, before that first use, only a reader (a monitoring page must not write)."""
        from mcp_trader.jobs import Jobs

        db = await self.db()
        if self._jobs is None:
            if not recover:
                return Jobs(db)
            self._jobs = Jobs(db)
            await self._jobs.recover()
        return self._jobs

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Close something opened on this home (a trading desk's venue connections) before the database."""
        self._closers.append(close)

    async def close(self) -> None:
        while self._closers:
            await self._closers.pop()()
        if self._jobs is not None:
            await self._jobs.close()
            self._jobs = None
        if self._db is not None:
            await self._db.close()
            self._db = None
