"""The dataset builder: collect candles, align them, compute the feature table or reuse it by its id.

A feature set's id is a hash of the aligned candles, the spec and the feature code version, so the
same inputs always give the same id, and a second request is read from the store, not recomputed.
"""

import asyncio
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel

from mcp_trader import __version__
from mcp_trader.data.collect import Collector, Progress
from mcp_trader.data.models import CollectRequest, CollectResult, MarketType
from mcp_trader.data.symbols import parse_symbol
from mcp_trader.data.timeframes import floor_ms, timeframe_ms
from mcp_trader.errors import InputError
from mcp_trader.features.builder import FEATURES_VERSION, build
from mcp_trader.features.models import FeatureInput, FeatureSetRecord
from mcp_trader.features.panel import Panel, align
from mcp_trader.features.spec import FeatureSpec, make_spec, window_ms
from mcp_trader.timefmt import now_iso, utc

if TYPE_CHECKING:
    from mcp_trader.home import Home

MAX_SYMBOLS = 50
MAX_DAYS = 3650
REFERENCE = "BTC"


class FeatureRequest(BaseModel):
    symbols: list[str]
    timeframe: str = "1h"
    windows: list[str] | None = None
    as_of: datetime | None = None
    days: int | None = None
    start: datetime | None = None
    sources: list[str] | None = None
    market: MarketType = "perp"


@dataclass(frozen=True)
class FeatureSet:
    record: FeatureSetRecord
    frame: pd.DataFrame
    panel: Panel
    spec: FeatureSpec
    cached: bool
    notes: list[str]

    @property
    def id(self) -> str:
        return self.record.id


def default_days(spec: FeatureSpec) -> int:
    """Four times the longest window, so that its correlations have history to roll over."""
    return max(30, math.ceil(4 * window_ms(spec.longest) / 86_400_000))


async def build_feature_set(home: "Home", request: FeatureRequest, progress: Progress | None = None) -> FeatureSet:
    spec = make_spec(request.timeframe, request.windows)
    symbols, notes = feature_universe(request)
    window = _window(request, spec)
    collected = await Collector(home).collect(
        CollectRequest(
            symbols=symbols, timeframes=[spec.timeframe], **window, sources=request.sources, market=request.market
        ),
        progress=progress,
    )
    _check_served(collected, symbols)
    notes += list(dict.fromkeys(n for d in collected.datasets for n in d.notes))
    frames, inputs = await _load(home, collected, spec)
    panel = align(dict(sorted(frames.items())), spec.timeframe)
    _check_history(panel, spec)
    feature_set_id = feature_set_id_of(panel, spec)
    store = await home.features()
    record = await store.find(feature_set_id)
    if record is not None:
        frame = await asyncio.to_thread(store.table, feature_set_id)
        return FeatureSet(record, frame, panel, spec, cached=True, notes=notes)
    table = await asyncio.to_thread(build, panel, spec, reference_symbol(panel))
    record = FeatureSetRecord(
        id=feature_set_id, created_at=now_iso(), timeframe=spec.timeframe, windows=spec.bars,
        symbols=list(panel.symbols), start=_iso(panel.index[0]), end=_iso(panel.index[-1]),
        rows=len(table.frame), columns=list(table.frame.columns), content_hash=table.content_hash,
        input_hash=panel.content_hash(), inputs=inputs, synthetic=any(i.synthetic for i in inputs),
        features_version=FEATURES_VERSION, package_version=__version__,
    )
    await store.save(record, table.frame)
    return FeatureSet(record, table.frame, panel, spec, cached=False, notes=notes)


def feature_universe(request: FeatureRequest) -> tuple[list[str], list[str]]:
    """The symbols to collect: those asked, then BTC as the correlation reference if missing."""
    if len(request.symbols) < 2:
        raise InputError(
            "symbols", f"{len(request.symbols)} symbol given; cross-asset confluence compares assets",
            "at least two symbols, e.g. ['BTC/USDT', 'ETH/USDT', 'SOL/USDT']",
        )
    if len(request.symbols) > MAX_SYMBOLS:
        raise InputError("symbols", f"{len(request.symbols)} symbols is too many", f"at most {MAX_SYMBOLS}")
    parsed = [parse_symbol(s, request.market, f"symbols[{i}]") for i, s in enumerate(request.symbols)]
    if len({p.unified for p in parsed}) < len(parsed):
        raise InputError("symbols", "a symbol is repeated", "distinct symbols")
    symbols = [p.unified for p in parsed]
    if all(p.base != REFERENCE for p in parsed):
        reference = parse_symbol(f"{REFERENCE}/{parsed[0].quote}", parsed[0].market, "symbols")
        symbols.append(reference.unified)
        return symbols, [f"{reference.unified} was added: BTC is the reference for corr_btc and joins the universe"]
    return symbols, []


def _window(request: FeatureRequest, spec: FeatureSpec) -> dict:
    """The collect window: the last `days` (up to now), or [start or as_of − days, the bar open at as_of]."""
    if request.start is not None and request.days is not None:
        raise InputError("days", "give either days or start, not both")
    days = default_days(spec) if request.days is None else request.days
    if not 1 <= days <= MAX_DAYS:
        raise InputError("days", f"{days} is out of range", f"1 to {MAX_DAYS}")
    if request.as_of is None and request.start is None:
        return {"days": days}  # "recent": the sample, offline, serves its last days and says so
    as_of = utc(request.as_of) if request.as_of else datetime.now(UTC)
    end_ms = floor_ms(int(as_of.timestamp() * 1000), spec.timeframe) + timeframe_ms(spec.timeframe)
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    start = utc(request.start) if request.start is not None else end - timedelta(days=days)
    if start >= end:
        raise InputError("start", f"{start.isoformat()} is not before as_of ({as_of.isoformat()})", "an earlier start")
    return {"start": start, "end": end}


def _check_served(collected: CollectResult, symbols: list[str]) -> None:
    if collected.unserved:
        missing = collected.unserved[0]
        reasons = "; ".join(f"{a.source}: {a.outcome}" + (f" ({a.reason})" if a.reason else "")
                            for a in missing.attempts)
        raise InputError(
            f"symbols[{symbols.index(missing.symbol)}]" if missing.symbol in symbols else "symbols",
            f"no source could serve {missing.symbol} {missing.timeframe} in this span: {reasons}",
            "symbols and a span that a source has; collect_data shows what each source serves",
        )
    kinds = {d.synthetic for d in collected.datasets}
    if len(kinds) > 1:
        fake = [d.symbol for d in collected.datasets if d.synthetic]
        real = [d.symbol for d in collected.datasets if not d.synthetic]
        raise InputError(
            "symbols",
            f"{', '.join(fake)} would be synthetic while {', '.join(real)} are market data; correlations between "
            "the two mean nothing",
            "symbols a real source serves for this span, or sources=['synthetic'] for all of them",
        )


async def _load(
    home: "Home", collected: CollectResult, spec: FeatureSpec
) -> tuple[dict[str, pd.DataFrame], list[FeatureInput]]:
    """The candles each dataset served in this collection (its window, not the whole stored file)."""
    catalog = await home.catalog()
    step = pd.Timedelta(milliseconds=timeframe_ms(spec.timeframe))
    frames, inputs = {}, []
    for served in collected.datasets:
        record = await catalog.dataset(served.dataset_id)
        if served.start is None or served.end is None:
            frame = pd.DataFrame()
        else:
            span = pd.Timestamp(served.start), pd.Timestamp(served.end) + step
            frame = await asyncio.to_thread(home.candles.read, Path(record.path), *span)
        frames[served.symbol] = frame
        inputs.append(FeatureInput(
            symbol=served.symbol, dataset_id=served.dataset_id, source=served.source,
            synthetic=served.synthetic, rows=len(frame),
        ))
    return frames, inputs


def _check_history(panel: Panel, spec: FeatureSpec) -> None:
    longest = spec.bars[spec.longest]
    if panel.shape[0] < longest:
        raise InputError(
            "windows",
            f"{spec.longest} is {longest} bars of {spec.timeframe} but these symbols have only {panel.shape[0]} "
            "bars of history in the span",
            "shorter windows, or a longer span (days or start)",
        )


def feature_set_id_of(panel: Panel, spec: FeatureSpec) -> str:
    key = f"{panel.content_hash()}|{spec.model_dump_json()}|{FEATURES_VERSION}"
    return "fs-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def reference_symbol(panel: Panel) -> str:
    return next(s for s in panel.symbols if s.split("/")[0] == REFERENCE)


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()
