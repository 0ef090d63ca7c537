"""The confluence snapshot: each asset's latest feature row at or before a time, ready to read."""

import math
from typing import TYPE_CHECKING

import pandas as pd

from mcp_trader.data.collect import Progress
from mcp_trader.features.dataset import FeatureRequest, build_feature_set
from mcp_trader.features.models import Aligned, AssetConfluence, ConfluenceResult
from mcp_trader.features.spec import FeatureSpec

if TYPE_CHECKING:
    from mcp_trader.home import Home

TOP = 3


async def compute_confluence(home: "Home", request: FeatureRequest,
                             progress: Progress | None = None) -> ConfluenceResult:
    fs = await build_feature_set(home, request, progress)
    latest, assets = snapshot(fs.frame, fs.spec, list(fs.panel.symbols))
    top = strongest(assets)
    kind = "synthetic" if fs.record.synthetic else "market"
    lead = ", ".join(f"{a.symbol} {a.stance} {a.confluence_score:+.2f}" for a in top) or "no asset has a signal"
    summary = (
        f"Confluence of {len(assets)} assets at {latest.isoformat()} ({fs.spec.timeframe}, {kind} data, "
        f"windows {', '.join(fs.spec.windows)}): strongest {lead}."
    )
    return ConfluenceResult(
        feature_set_id=fs.id, as_of=latest.isoformat(), timeframe=fs.spec.timeframe, windows=fs.spec.bars,
        assets=assets, strongest=top, data=fs.record.inputs, synthetic=fs.record.synthetic, cached=fs.cached,
        rows=fs.record.rows, columns=len(fs.record.columns),
        resources={
            "table": f"trader://features/{fs.id}/table.csv", "heatmap": f"trader://features/{fs.id}/heatmap.png",
            "summary": f"trader://features/{fs.id}",
        },
        notes=fs.notes, summary=summary,
    )


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
    scored = [(a, a.confluence_score) for a in assets if a.confluence_score is not None and a.confluence_score != 0]
    scored.sort(key=lambda pair: abs(pair[1]), reverse=True)
    return [
        Aligned(symbol=a.symbol, confluence_score=score, stance="bullish" if score > 0 else "bearish")
        for a, score in scored[:TOP]
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
