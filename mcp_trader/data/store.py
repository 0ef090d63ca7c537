"""Candles as one Parquet file per source/market/symbol/timeframe, provenance in its footer."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mcp_trader.data.candles import COLUMNS, empty
from mcp_trader.store.files import write_atomically

META_KEY = b"mcp_trader.provenance"
ROW_GROUP = 8760  # a year of hourly bars: a range read touches only the row groups it needs


class CandleStore:
    def __init__(self, root: Path):
        self.root = root

    def path(self, source: str, market: str, slug: str, timeframe: str) -> Path:
        return self.root / source / market / slug / f"{timeframe}.parquet"

    def write(self, path: Path, frame: pd.DataFrame, provenance: dict[str, Any]) -> None:
        table = pa.Table.from_pandas(frame[list(COLUMNS)], preserve_index=True)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), META_KEY: json.dumps(provenance).encode()}
        )

        def write(tmp: Path) -> None:
            pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP)

        write_atomically(path, write)

    def read(self, path: Path, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Rows with open time in [start, end); reads only the row groups that overlap."""
        if not path.exists():
            return empty()
        filters: list[Any] = []  # (column, operator, pd.Timestamp): pandas has no stubs here
        if start is not None:
            filters.append(("time", ">=", start))
        if end is not None:
            filters.append(("time", "<", end))
        table = pq.read_table(path, filters=filters or None)
        frame = table.to_pandas()
        frame.index = frame.index.as_unit("ms")
        return frame

    def provenance(self, path: Path) -> dict[str, Any] | None:
        if not path.exists():
            return None
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[META_KEY]) if META_KEY in metadata else None
