"""The contract of a collection: what is asked and what comes back (pydantic only, cheap to import)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

MarketType = Literal["spot", "perp"]


class CollectRequest(BaseModel):
    symbols: list[str]
    timeframes: list[str] = ["1h"]
    days: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    sources: list[str] | None = None
    market: MarketType = "perp"


class SourceAttempt(BaseModel):
    source: str
    outcome: Literal["served", "not_listed", "unavailable", "no_data", "skipped"]
    reason: str | None = None


class DatasetResult(BaseModel):
    dataset_id: str = Field(description="Id for trader://datasets/{dataset_id} and for later tools.")
    symbol: str
    timeframe: str
    source: str
    synthetic: bool = Field(description="True when the candles are generated, not market prices.")
    rows: int = Field(description="Bars in the served window.")
    new_rows: int = Field(description="Bars fetched by this call (0 when the store already had them).")
    start: str | None = Field(description="Open time of the first bar served (UTC).")
    end: str | None = Field(description="Open time of the last bar served (UTC).")
    resampled_from: str | None = Field(description="The finer timeframe these bars were built from, if any.")
    quality: str = Field(description="Quality summary; the full report is in the dataset resource.")
    content_hash: str
    notes: list[str]
    attempts: list[SourceAttempt] = Field(description="Each source tried, in order, and why it did not serve.")


class Unserved(BaseModel):
    symbol: str
    timeframe: str
    attempts: list[SourceAttempt]


class CollectResult(BaseModel):
    collection_id: str
    datasets: list[DatasetResult]
    unserved: list[Unserved] = Field(description="Symbol/timeframe pairs that no source could serve.")
    synthetic: bool = Field(description="True if any dataset here is synthetic.")
    funding: list[dict[str, Any]] = Field(default_factory=list, description="Perpetuals: funding settlements "
                                          "fetched from the venue (Aster, else Binance) for the window, stored for "
                                          "backtests past the bundled history.")
    summary: str
