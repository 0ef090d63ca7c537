"""The contract of compute_confluence (pydantic only, cheap to import)."""

from pydantic import BaseModel, Field


class FeatureInput(BaseModel):
    symbol: str
    dataset_id: str
    source: str
    synthetic: bool
    rows: int


class FeatureSetRecord(BaseModel):
    id: str
    created_at: str
    timeframe: str
    windows: dict[str, int]  # window → bars
    symbols: list[str]
    start: str | None
    end: str | None
    rows: int
    columns: list[str]
    content_hash: str  # of the feature matrix
    input_hash: str  # of the aligned candles it was computed from
    inputs: list[FeatureInput]
    synthetic: bool
    features_version: str
    package_version: str


class AssetConfluence(BaseModel):
    symbol: str
    time: str = Field(description="Open time (UTC) of the bar these values are from.")
    confluence_score: float | None = Field(description="direction × alignment, in [-1, 1]; see components.")
    direction: float | None = Field(description="Mean of the asset's own signal states, -1 (bearish) to 1.")
    alignment: float | None = Field(description="Share of other assets agreeing with those states, 0 to 1.")
    components: dict[str, float | None] = Field(description="Every confluence component and key indicator.")
    note: str | None = None


class Aligned(BaseModel):
    symbol: str
    confluence_score: float
    stance: str = Field(description="bullish or bearish")


class ConfluenceResult(BaseModel):
    feature_set_id: str = Field(description="Id of the full feature table, for its resources and later tools.")
    as_of: str = Field(description="Open time (UTC) of the snapshot bar: the latest bar at or before as_of.")
    timeframe: str
    windows: dict[str, int] = Field(description="Each window and its length in bars.")
    assets: list[AssetConfluence] = Field(description="One snapshot per asset, highest confluence score first.")
    strongest: list[Aligned] = Field(description="The assets with the strongest aligned signal, either way.")
    data: list[FeatureInput] = Field(description="The dataset behind each symbol and its source.")
    synthetic: bool = Field(description="True if the candles are generated, not market prices.")
    cached: bool = Field(description="True when the feature table was already stored for these exact inputs.")
    rows: int = Field(description="Rows (time × asset) in the full feature table.")
    columns: int
    resources: dict[str, str] = Field(description="URIs of the full table (CSV) and the heatmap (PNG).")
    notes: list[str]
    summary: str
