"""ONNX exports: one folder per export id under <home>/exports with its files and certificate, indexed in SQLite."""

from pathlib import Path

from mcp_trader.errors import NotFoundError
from mcp_trader.export.records import RECORD_FILE, ExportRecord
from mcp_trader.store.folders import FolderStore


class ExportStore(FolderStore):
    async def publish(self, record: ExportRecord, staging: Path) -> None:
        """Certificate into the folder, the folder into place, then the index row."""
        self.place(staging, record.id, RECORD_FILE, record.model_dump_json(indent=1))
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO exports (id, model_id, created_at, record) VALUES (?, ?, ?, ?)",
                (record.id, record.model_id, record.created_at, record.model_dump_json()),
            )

    async def record(self, export_id: str) -> ExportRecord:
        row = await self.db.fetch_one("SELECT record FROM exports WHERE id = ?", export_id)
        if row is None or not self.folder(export_id).is_dir():
            raise NotFoundError(f"no export {export_id!r}; export_onnx returns export ids and trader://exports "
                                "lists them")
        return ExportRecord.model_validate_json(row["record"])

    async def records(self, limit: int = 100) -> list[ExportRecord]:
        rows = await self.db.fetch_all("SELECT record FROM exports ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                       limit)
        return [ExportRecord.model_validate_json(r["record"]) for r in rows]

    async def of_model(self, model_id: str) -> list[ExportRecord]:
        """A model's exports, newest first (a folder removed by hand included: callers check folder())."""
        rows = await self.db.fetch_all("SELECT record FROM exports WHERE model_id = ? ORDER BY created_at DESC, "
                                       "rowid DESC", model_id)
        return [ExportRecord.model_validate_json(r["record"]) for r in rows]
