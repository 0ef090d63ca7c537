"""The confluence snapshot: each asset's latest feature row at or before a time, ready to read."""

import math

import pandas as pd
from pydantic import BaseModel, Field

from mcp_trader.features.spec import FeatureSpec

TOP = 3


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


def snapshot(frame: pd.DataFrame, spec: FeatureSpec, symbols: list[str]) -> tuple[pd.Timestamp, list[AssetConfluence]]:
    """Each symbol's last row; the snapshot time is the latest bar any symbol has."""
    times = frame.index.get_level_values("time")
    latest = times.max()
    by_symbol = frame.groupby(level="symbol", observed=True).tail(1)
    rows = {str(symbol): (time, row) for (time, symbol), row in by_symbol.iterrows()}
    assets = []
    for symbol in symbols:
        time, row = rows[symbol]
        values = {name: _number(row[name]) for name in _component_names(spec)}
        note = None if time == latest else f"no candle at {latest.isoformat()}; values are from its last bar"
        assets.append(AssetConfluence(
            symbol=symbol, time=time.isoformat(), confluence_score=_number(row["confluence_score"]),
            direction=_number(row["direction"]), alignment=_number(row["alignment"]), components=values, note=note,
        ))
    assets.sort(key=lambda a: -math.inf if a.confluence_score is None else a.confluence_score, reverse=True)
    return latest, assets


def strongest(assets: list[AssetConfluence]) -> list[Aligned]:
    scored = [a for a in assets if a.confluence_score is not None and a.confluence_score != 0]
    scored.sort(key=lambda a: abs(a.confluence_score), reverse=True)
    return [
        Aligned(symbol=a.symbol, confluence_score=a.confluence_score,
                stance="bullish" if a.confluence_score > 0 else "bearish")
        for a in scored[:TOP]
    ]


def _component_names(spec: FeatureSpec) -> list[str]:
    w = spec.windows
    return [
        *(f"corr_btc_{x}" for x in w), *(f"corr_mkt_{x}" for x in w), *(f"corr_mean_{x}" for x in w),
        "tech_alignment", "align_rsi", "align_macd", "align_bb", "mom_alignment", *(f"mom_align_{x}" for x in w),
        "volume_abnormal", "volume_confluence", f"volume_z_{spec.longest}",
        "rsi_14", "macd_hist_pct", "bb_pctb", *(f"ret_{x}" for x in w), f"rvol_{spec.shortest}",
        "listing_age", "history_bars", f"amihud_{spec.shortest}", f"spread_{spec.shortest}",
    ]


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)
