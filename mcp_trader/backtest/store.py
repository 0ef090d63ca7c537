"""Backtest runs: one folder per run id under <home>/backtests with its artifacts, and its record in SQLite."""

import os
import shutil
from pathlib import Path

from mcp_trader.backtest.records import BacktestRecord
from mcp_trader.errors import NotFoundError
from mcp_trader.store.db import Database
from mcp_trader.store.files import write_atomically

ARTIFACTS = {"equity": "equity.json", "equity.png": "equity.png", "trades": "trades.csv"}


class RunStore:
    def __init__(self, root: Path, db: Database):
        self.root = root
        self.db = db

    def folder(self, run_id: str) -> Path:
        return self.root / run_id

    def staging(self, run_id: str) -> Path:
        """Where a run's files are written before it is published; a crash leaves no half run behind."""
        path = self.root / f".{run_id}.partial"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    async def publish(self, record: BacktestRecord, staging: Path) -> None:
        text = record.model_dump_json(indent=1)
        write_atomically(staging / "run.json", lambda tmp: Path(tmp).write_text(text))
        os.replace(staging, self.folder(record.id))
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
