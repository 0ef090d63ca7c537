"""Backtest runs: one folder per run id under <home>/backtests with its artifacts, and its record in SQLite."""

from pathlib import Path

from mcp_trader.backtest.records import BacktestRecord
from mcp_trader.errors import NotFoundError
from mcp_trader.store.folders import FolderStore

ARTIFACTS = {"equity": "equity.json", "equity.png": "equity.png", "trades": "trades.csv"}


class RunStore(FolderStore):
    async def publish(self, record: BacktestRecord, staging: Path) -> None:
        self.place(staging, record.id, "run.json", record.model_dump_json(indent=1))
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO backtests (id, created_at, strategy, model_id, record) VALUES (?, ?, ?, ?, ?)",
                (record.id, record.created_at, record.strategy, record.model_id, record.model_dump_json()),
            )

    async def record(self, run_id: str) -> BacktestRecord:
        row = await self.db.fetch_one("SELECT record FROM backtests WHERE id = ?", run_id)
        if row is None or not self.folder(run_id).is_dir():
            raise NotFoundError(f"no backtest {run_id!r}; run_backtest returns run ids and trader://backtests "
                                "lists them")
        return BacktestRecord.model_validate_json(row["record"])

    async def records(self, limit: int = 100) -> list[BacktestRecord]:
        rows = await self.db.fetch_all("SELECT record FROM backtests ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                       limit)
        return [BacktestRecord.model_validate_json(r["record"]) for r in rows]

    async def artifact(self, run_id: str, name: str) -> bytes:
        await self.record(run_id)
        return (self.folder(run_id) / ARTIFACTS[name]).read_bytes()
