"""Perpetual funding rates from the venues, for spans past the bundled history: fetched through ccxt's
fetchFundingRateHistory (Aster first, then Binance USDⓈ-M), one Parquet file per venue and symbol in the home,
provenance in its footer, extended incrementally from its last settlement and replaced atomically."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mcp_trader.data.symbols import Symbol
from mcp_trader.store.files import write_atomically
from mcp_trader.timefmt import iso_z, ms_to_time, now_iso

META_KEY = b"mcp_trader.provenance"
VENUES = ("aster", "binance")
PAGE = 1000  # both venues' maximum per request
EIGHT_HOURS_MS = 8 * 3_600_000


class FundingStore:
    """Settlement time (ms) → rate, per venue and perpetual."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, venue: str, symbol: Symbol) -> Path:
        return self.root / venue / f"{symbol.slug}.parquet"

    def read(self, venue: str, symbol: Symbol) -> pd.Series:
        path = self.path(venue, symbol)
        if not path.exists():
            return pd.Series(dtype="float64")
        table = pq.read_table(path).to_pandas()
        return pd.Series(table["rate"].to_numpy(), index=table["time"].to_numpy("int64"))

    def provenance(self, venue: str, symbol: Symbol) -> dict[str, Any] | None:
        path = self.path(venue, symbol)
        if not path.exists():
            return None
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[META_KEY]) if META_KEY in metadata else None

    def write(self, venue: str, symbol: Symbol, rates: pd.Series, provenance: dict[str, Any]) -> None:
        frame = pd.DataFrame({"time": rates.index.to_numpy("int64"), "rate": rates.to_numpy("float64")})
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               META_KEY: json.dumps(provenance).encode()})
        write_atomically(self.path(venue, symbol), lambda tmp: pq.write_table(table, tmp, compression="zstd"))

    def stored(self, symbol: Symbol) -> tuple[pd.Series, str | None]:
        """The settlements of the first venue that has any, and its name."""
        for venue in VENUES:
            rates = self.read(venue, symbol)
            if len(rates):
                return rates, venue
        return pd.Series(dtype="float64"), None


async def collect_funding(store: FundingStore, sources: dict[str, Any], symbol: Symbol, start_ms: int,
                          end_ms: int) -> dict[str, Any]:
    """Extend the stored settlements of a perpetual to [start_ms, end_ms) from the first venue that answers;
    what was done, per the collection's report. `sources`: venue name → its ExchangeSource."""
    errors = []
    for venue in VENUES:
        source = sources.get(venue)
        if source is None:
            continue
        held = store.read(venue, symbol)
        since = max(start_ms, int(held.index[-1]) + 1) if len(held) else start_ms
        try:
            fetched = await source.fetch_funding(symbol, since, end_ms) if since < end_ms else pd.Series(
                dtype="float64")
        except Exception as error:  # a venue down or without the symbol: the next one may serve it
            errors.append(f"{venue}: {error}")
            continue
        if not len(held) and not len(fetched):
            errors.append(f"{venue}: no settlements in the window")
            continue
        merged = pd.concat([held, fetched])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        if len(fetched):
            store.write(venue, symbol, merged, {
                "venue": venue, "symbol": symbol.unified, "method": "ccxt fetchFundingRateHistory",
                "fetched_at": now_iso(), "settlements": len(merged),
                "first": iso_z(ms_to_time(merged.index[0])), "last": iso_z(ms_to_time(merged.index[-1])),
            })
        return {"symbol": symbol.unified, "venue": venue, "new_settlements": len(fetched),
                "settlements": len(merged), "last": iso_z(ms_to_time(merged.index[-1]))}
    return {"symbol": symbol.unified, "venue": None, "new_settlements": 0, "settlements": 0, "last": None,
            "errors": errors}


