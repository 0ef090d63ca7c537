"""Trained models: one folder per model id under <home>/models with its files, and its record in SQLite."""

import json
from pathlib import Path

from mcp_trader.errors import NotFoundError
from mcp_trader.models.records import ModelRecord
from mcp_trader.store.folders import FolderStore


class ModelRegistry(FolderStore):
    async def publish(self, record: ModelRecord, staging: Path) -> None:
        """Record first into the folder, move the folder into place, then index it in SQLite."""
        self.place(staging, record.id, "model.json", record.model_dump_json(indent=1))
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO models (id, created_at, kind, variant, timeframe, record) VALUES (?, ?, ?, ?, ?, ?)",
                (record.id, record.created_at, record.kind, record.variant, record.timeframe,
                 record.model_dump_json()),
            )

    async def record(self, model_id: str) -> ModelRecord:
        row = await self.db.fetch_one("SELECT record FROM models WHERE id = ?", model_id)
        if row is None or not self.folder(model_id).is_dir():
            raise NotFoundError(f"no model {model_id!r}; train_model returns model ids and list_models lists them")
        return ModelRecord.model_validate_json(row["record"])

    async def records(self, limit: int = 100) -> list[ModelRecord]:
        rows = await self.db.fetch_all("SELECT record FROM models ORDER BY created_at DESC LIMIT ?", limit)
        return [ModelRecord.model_validate_json(r["record"]) for r in rows]

    def read_json(self, model_id: str, name: str) -> dict:
        return json.loads((self.folder(model_id) / name).read_text())
