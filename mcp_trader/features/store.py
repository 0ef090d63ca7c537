"""Feature tables as Parquet files under the home, their records in SQLite, keyed by feature-set id."""

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mcp_trader.errors import NotFoundError
from mcp_trader.features.models import FeatureSetRecord
from mcp_trader.store.db import Database
from mcp_trader.store.files import write_atomically

META_KEY = b"mcp_trader.feature_set"


class FeatureStore:
    def __init__(self, root: Path, db: Database):
        self.root = root
        self.db = db

    def path(self, feature_set_id: str) -> Path:
        return self.root / f"{feature_set_id}.parquet"

    async def find(self, feature_set_id: str) -> FeatureSetRecord | None:
        row = await self.db.fetch_one("SELECT record FROM feature_sets WHERE id = ?", feature_set_id)
        if row is None or not self.path(feature_set_id).exists():
            return None
        return FeatureSetRecord.model_validate_json(row["record"])

    async def record(self, feature_set_id: str) -> FeatureSetRecord:
        record = await self.find(feature_set_id)
        if record is None:
            raise NotFoundError(f"no feature set {feature_set_id!r}; compute_confluence returns feature-set ids")
        return record

    async def records(self) -> list[FeatureSetRecord]:
        rows = await self.db.fetch_all("SELECT record FROM feature_sets ORDER BY created_at DESC")
        return [FeatureSetRecord.model_validate_json(r["record"]) for r in rows]

    def table(self, feature_set_id: str) -> pd.DataFrame:
        path = self.path(feature_set_id)
        if not path.exists():
            raise NotFoundError(f"no feature set {feature_set_id!r}; compute_confluence returns feature-set ids")
        frame = pq.read_table(path).to_pandas()
        frame.index = frame.index.set_levels(frame.index.levels[0].as_unit("ms"), level="time")
        return frame

    async def save(self, record: FeatureSetRecord, frame: pd.DataFrame) -> None:
        """The file first, then the record: a record never points at a missing or partial file."""
        table = pa.Table.from_pandas(frame, preserve_index=True)
        metadata = {**(table.schema.metadata or {}), META_KEY: record.model_dump_json().encode()}
        table = table.replace_schema_metadata(metadata)
        write_atomically(self.path(record.id), lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO feature_sets (id, created_at, timeframe, symbols, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (record.id, record.created_at, record.timeframe, json.dumps(record.symbols), record.model_dump_json()),
            )
