"""The catalog of stored datasets and the record of every collection, in SQLite."""

import json
from typing import Any

from pydantic import BaseModel

from mcp_trader.errors import NotFoundError
from mcp_trader.store.db import Database, dumps
from mcp_trader.timefmt import now_iso


class DatasetRecord(BaseModel):
    id: str
    source: str
    market: str
    symbol: str
    timeframe: str
    path: str
    rows: int
    first_time: str | None
    last_time: str | None
    content_hash: str
    synthetic: bool
    provenance: dict[str, Any]
    quality: dict[str, Any]
    updated_at: str


class Catalog:
    def __init__(self, db: Database):
        self.db = db

    async def save_dataset(self, record: DatasetRecord) -> None:
        row = record.model_dump()
        row["provenance"], row["quality"] = dumps(row["provenance"]), dumps(row["quality"])
        row["synthetic"] = int(row["synthetic"])
        columns = ", ".join(row)
        async with self.db.transaction() as conn:
            await conn.execute(
                f"INSERT OR REPLACE INTO datasets ({columns}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )

    async def dataset(self, dataset_id: str) -> DatasetRecord:
        row = await self.db.fetch_one("SELECT * FROM datasets WHERE id = ?", dataset_id)
        if row is None:
            raise NotFoundError(f"no dataset {dataset_id!r}; list them at trader://datasets")
        return _record(row)

    async def find_dataset(self, dataset_id: str) -> DatasetRecord | None:
        row = await self.db.fetch_one("SELECT * FROM datasets WHERE id = ?", dataset_id)
        return _record(row) if row else None

    async def datasets(self) -> list[DatasetRecord]:
        rows = await self.db.fetch_all("SELECT * FROM datasets ORDER BY symbol, timeframe, source")
        return [_record(row) for row in rows]

    async def save_collection(self, collection_id: str, request: dict[str, Any], result: dict[str, Any]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO collections (id, created_at, request, result) VALUES (?, ?, ?, ?)",
                (collection_id, now_iso(), dumps(request), dumps(result)),
            )


def _record(row: dict[str, Any]) -> DatasetRecord:
    row = dict(row)
    row["provenance"], row["quality"] = json.loads(row["provenance"]), json.loads(row["quality"])
    return DatasetRecord(**row)
