"""Collecting candles: the source fallback chain, incremental fetches and provenance.

For each symbol and timeframe the sources are tried in order; the first that serves wins, and
every attempt is recorded with its outcome. A dataset (one source, market, symbol and timeframe)
remembers the windows it has already fetched, so a second call fetches only what is missing.
All input is checked and every symbol resolved before anything is written.
"""

import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel

from mcp_trader import __version__
from mcp_trader.data import candles
from mcp_trader.data.models import CollectRequest, CollectResult, DatasetResult, SourceAttempt, Unserved
from mcp_trader.data.quality import QualityReport, check
from mcp_trader.data.resample import resample
from mcp_trader.data.sources import NETWORK_SOURCES, SOURCE_NAMES, build_source
from mcp_trader.data.sources.base import Source, SourceLacksData, SourceUnavailable, Window
from mcp_trader.data.sources.sample import SYMBOLS as SAMPLE_SYMBOLS
from mcp_trader.data.symbols import Symbol, parse_symbol
from mcp_trader.data.timeframes import SUPPORTED, finer_timeframe, floor_ms, timeframe_ms
from mcp_trader.errors import InputError
from mcp_trader.store.catalog import DatasetRecord
from mcp_trader.timefmt import iso_z, ms_to_time, now_iso, utc

if TYPE_CHECKING:
    from mcp_trader.home import Home

MAX_DAYS = 3650
MAX_SYMBOLS = 50
DAY_MS = 86_400_000
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)

Progress = Callable[[float, float, str], Awaitable[None]]


class Plan(BaseModel):
    symbols: list[Symbol]
    timeframes: list[str]
    windows: dict[str, Window]
    sources: list[str]


def plan(request: CollectRequest, default_sources: tuple[str, ...], now_ms: int) -> Plan:
    """Check every field of a request and turn it into symbols, windows and a source order."""
    if not request.symbols:
        raise InputError("symbols", "at least one symbol is needed", "e.g. ['BTC/USDT', 'ETH/USDT']")
    if len(request.symbols) > MAX_SYMBOLS:
        raise InputError("symbols", f"{len(request.symbols)} symbols is too many", f"at most {MAX_SYMBOLS}")
    symbols = list(dict.fromkeys(
        parse_symbol(text, request.market, f"symbols[{i}]") for i, text in enumerate(request.symbols)
    ))
    if not request.timeframes:
        raise InputError("timeframes", "at least one timeframe is needed", ", ".join(SUPPORTED))
    for tf in request.timeframes:
        if tf not in SUPPORTED:
            raise InputError("timeframes", f"unknown timeframe {tf!r}", ", ".join(SUPPORTED))
    sources = list(request.sources) if request.sources is not None else list(default_sources)
    if not sources:
        raise InputError("sources", "at least one source is needed", ", ".join(SOURCE_NAMES))
    for name in sources:
        if name not in SOURCE_NAMES:
            raise InputError("sources", f"unknown source {name!r}", ", ".join(SOURCE_NAMES))
    timeframes = list(dict.fromkeys(request.timeframes))
    windows = {tf: _window(request, tf, now_ms) for tf in timeframes}
    return Plan(symbols=symbols, timeframes=timeframes, windows=windows, sources=list(dict.fromkeys(sources)))


def _window(request: CollectRequest, tf: str, now_ms: int) -> Window:
    step = timeframe_ms(tf)
    if request.days is not None and (request.start or request.end):
        raise InputError("days", "give either days or start/end, not both")
    if request.start is None and request.end is not None:
        raise InputError("start", "end was given without start", "an ISO date-time such as 2024-01-01")
    if request.start is None:
        days = 30 if request.days is None else request.days
        if not 1 <= days <= MAX_DAYS:
            raise InputError("days", f"{days} is out of range", f"1 to {MAX_DAYS}")
        end = floor_ms(now_ms, tf)
        return Window(floor_ms(end - days * DAY_MS, tf), end, recent=True)
    start, end_at = utc(request.start), utc(request.end) if request.end else None
    if start < EARLIEST:
        raise InputError("start", f"{start:%Y-%m-%d} is before any crypto market existed", "2009-01-03 or later")
    start_ms = int(start.timestamp() * 1000)
    end_ms = min(int(end_at.timestamp() * 1000), now_ms) if end_at else now_ms
    if start_ms >= end_ms:
        raise InputError("start", f"start {start:%Y-%m-%d %H:%M} is not before end", "start < end <= now")
    if (end_ms - start_ms) > MAX_DAYS * DAY_MS:
        raise InputError("end", "the window is longer than 10 years", f"at most {MAX_DAYS} days")
    start_ms, end_ms = -(-start_ms // step) * step, floor_ms(end_ms, tf)
    if start_ms >= end_ms:
        raise InputError("end", f"the window holds no complete {tf} bar", f"a window of at least one {tf} bar")
    return Window(start_ms, end_ms, recent=False)


class Collector:
    def __init__(self, home: "Home", clock: Callable[[], float] = time.time):
        self.home = home
        self.clock = clock
        self._down: dict[str, str] = {}

    async def collect(self, request: CollectRequest, progress: Progress | None = None) -> CollectResult:
        settings = self.home.settings
        the_plan = plan(request, settings.sources, int(self.clock() * 1000))
        self._down = {}
        datasets: list[DatasetResult] = []
        unserved: list[Unserved] = []
        skipped = [n for n in the_plan.sources if settings.offline and n in NETWORK_SOURCES]
        async with AsyncExitStack() as stack:
            sources = [
                await stack.enter_async_context(build_source(n, settings))
                for n in the_plan.sources if n not in skipped
            ]
            chains = [await self._resolve(i, s, sources, skipped) for i, s in enumerate(the_plan.symbols)]
            total, done = len(the_plan.symbols) * len(the_plan.timeframes), 0
            for symbol, (chain, tried) in zip(the_plan.symbols, chains, strict=True):
                for tf in the_plan.timeframes:
                    outcome = await self._collect_one(symbol, tf, the_plan.windows[tf], chain, tried)
                    if isinstance(outcome, DatasetResult):
                        datasets.append(outcome)
                    else:
                        unserved.append(outcome)
                    done += 1
                    if progress:
                        await progress(done, total, _progress_line(outcome))
            funding = await self._funding(the_plan, sources)
        result = CollectResult(
            funding=funding,
            collection_id=f"col-{uuid.uuid4().hex[:12]}",
            datasets=datasets,
            unserved=unserved,
            synthetic=any(d.synthetic for d in datasets),
            summary=_summary(datasets, unserved),
        )
        catalog = await self.home.catalog()
        await catalog.save_collection(result.collection_id, request.model_dump(mode="json"), result.model_dump())
        return result

    async def _funding(self, the_plan: Plan, sources: list[Source]) -> list[dict]:
        """Each perpetual's funding settlements over the widest window, from the venues among the sources (not one
        found down earlier in this call)."""
        from mcp_trader.data.funding import FundingStore, collect_funding

        venues = {s.name: s for s in sources if hasattr(s, "fetch_funding") and s.name not in self._down}
        if not venues:
            return []
        start = min(w.start_ms for w in the_plan.windows.values())
        end = max(w.end_ms for w in the_plan.windows.values())
        store = FundingStore(self.home.settings.funding_dir)
        return [await collect_funding(store, venues, symbol, start, end) for symbol in the_plan.symbols
                if symbol.market == "perp"]

    async def _resolve(
        self, index: int, symbol: Symbol, sources: list[Source], skipped: list[str]
    ) -> tuple[list[Source], list[SourceAttempt]]:
        """Check that a real source lists the symbol; returns the chain from there and the attempts so far.

        Sources after the first that lists it are asked lazily, only if the ones before them fail.
        """
        offline = "offline mode (MCP_TRADER_OFFLINE)"
        tried = [SourceAttempt(source=n, outcome="skipped", reason=offline) for n in skipped]
        answered: list[str] = []
        listed_synthetic: list[Source] = []
        for position, source in enumerate(sources):
            attempt = await self._ask(source, symbol)
            if attempt is not None:
                tried.append(attempt)
                answered += [source.name] if attempt.outcome == "not_listed" else []
            elif source.synthetic:
                listed_synthetic.append(source)
            else:
                return [*listed_synthetic, *sources[position:]], tried
        if skipped or not all(s.synthetic for s in sources):
            asked = ", ".join(answered) or "none (all unreachable or skipped)"
            raise InputError(
                f"symbols[{index}]",
                f"{symbol} is not listed by any source that answered: {asked}",
                f"symbols those sources list; offline, the bundled sample has {', '.join(SAMPLE_SYMBOLS)}; "
                "sources=['synthetic'] generates data for any symbol",
            )
        return listed_synthetic, tried

    async def _ask(self, source: Source, symbol: Symbol) -> SourceAttempt | None:
        """None if the source lists the symbol, else the attempt that says why it cannot serve it."""
        if source.name in self._down:
            return SourceAttempt(source=source.name, outcome="skipped", reason=self._down[source.name])
        try:
            listed = await source.lists(symbol)
        except SourceUnavailable as error:
            self._down[source.name] = f"unreachable earlier in this call ({error})"
            return SourceAttempt(source=source.name, outcome="unavailable", reason=str(error))
        return None if listed else SourceAttempt(source=source.name, outcome="not_listed", reason="no such market")

    async def _collect_one(
        self, symbol: Symbol, tf: str, window: Window, chain: list[Source], tried: list[SourceAttempt]
    ) -> DatasetResult | Unserved:
        attempts = list(tried)
        for source in chain:
            refusal = await self._ask(source, symbol)  # markets are cached per source: cheap after the first ask
            if refusal is not None:
                attempts.append(refusal)
                continue
            try:
                result = await self._serve(source, symbol, tf, window)
            except SourceUnavailable as error:
                attempts.append(SourceAttempt(source=source.name, outcome="unavailable", reason=str(error)))
                continue
            except SourceLacksData as error:
                attempts.append(SourceAttempt(source=source.name, outcome="no_data", reason=str(error)))
                continue
            attempts.append(SourceAttempt(source=source.name, outcome="served"))
            return result.model_copy(update={"attempts": attempts})
        return Unserved(symbol=symbol.unified, timeframe=tf, attempts=attempts)

    async def _serve(self, source: Source, symbol: Symbol, tf: str, requested: Window) -> DatasetResult:
        native = tf if tf in source.native_timeframes else finer_timeframe(tf, source.native_timeframes)
        if native is None:
            raise SourceLacksData(f"{source.name} has no {tf} candles nor finer ones to build them from")
        window, moved = source.adjust_window(symbol, tf, requested)
        store = self.home.candles
        dataset_id = f"{source.name}.{symbol.slug}.{tf}"
        path = store.path(source.name, symbol.market, symbol.slug, tf)
        provenance = store.provenance(path) or {}
        ranges: list[dict[str, Any]] = list(provenance.get("ranges", []))
        fetched, partial = await self._fetch_missing(source, symbol, tf, native, window, ranges)
        catalog = await self.home.catalog()
        new_rows = 0
        if fetched:
            stored = store.read(path) if provenance else candles.empty()
            merged, report = check(candles.merge(stored, pd.concat(fetched)), tf)
            if candles.between(merged, window.start_ms, window.end_ms).empty:
                raise SourceLacksData(f"{source.name} has no {tf} candles for {symbol} in the window")
            new_rows = len(merged) - len(stored)
            provenance = {
                "dataset_id": dataset_id, "source": source.name, "market": symbol.market, "symbol": symbol.unified,
                "timeframe": tf, "synthetic": source.synthetic, "ranges": ranges, "rows": len(merged),
                "first_time": iso_z(merged.index[0]), "last_time": iso_z(merged.index[-1]),
                "content_hash": candles.content_hash(merged), "quality": report.model_dump(),
                "package_version": __version__,
            }
            store.write(path, merged, provenance)
            await catalog.save_dataset(_catalog_record(path, provenance))
        elif await catalog.find_dataset(dataset_id) is None and provenance:
            await catalog.save_dataset(_catalog_record(path, provenance))  # heal a catalog that missed a write
        served = store.read(path, ms_to_time(window.start_ms), ms_to_time(window.end_ms))
        if served.empty:
            raise SourceLacksData(f"{source.name} has no {tf} candles for {symbol} in the window")
        notes = [moved] if moved else []
        notes += list(dict.fromkeys(r["note"] for r in ranges if r["note"] and _overlaps(r, window)))
        if partial:
            notes.append(f"{partial} {tf} bars built from an incomplete set of {native} bars")
        if native != tf:
            notes.append(f"resampled from {native}: {source.name} serves no {tf} candles")
        return DatasetResult(
            dataset_id=dataset_id, symbol=symbol.unified, timeframe=tf, source=source.name,
            synthetic=source.synthetic, rows=len(served), new_rows=new_rows,
            start=iso_z(served.index[0]), end=iso_z(served.index[-1]), resampled_from=native if native != tf else None,
            quality=QualityReport(**provenance["quality"]).summary(), content_hash=provenance["content_hash"],
            notes=notes, attempts=[],
        )

    async def _fetch_missing(
        self, source: Source, symbol: Symbol, tf: str, native: str, window: Window, ranges: list[dict[str, Any]]
    ) -> tuple[list[pd.DataFrame], int]:
        """Fetch the parts of the window no earlier call covered; records each in `ranges`."""
        fetched, partial = [], 0
        for start_ms, end_ms in _missing(window, ranges):
            piece = Window(start_ms, end_ms, window.recent)
            try:
                got = await source.fetch(symbol, native, piece)
            except SourceLacksData:
                continue
            frame = got.frame
            if native != tf:
                frame, incomplete = resample(frame, native, tf)
                partial += incomplete
            fetched.append(frame)
            ranges.append(_range(piece, len(frame), source.name, native if native != tf else None, got.note))
        return fetched, partial


def _catalog_record(path: Path, provenance: dict[str, Any]) -> DatasetRecord:
    p = provenance
    return DatasetRecord(
        id=p["dataset_id"], source=p["source"], market=p["market"], symbol=p["symbol"], timeframe=p["timeframe"],
        path=str(path), rows=p["rows"], first_time=p["first_time"], last_time=p["last_time"],
        content_hash=p["content_hash"], synthetic=p["synthetic"], provenance=p, quality=p["quality"],
        updated_at=now_iso(),
    )


def _overlaps(r: dict[str, Any], window: Window) -> bool:
    return r["start_ms"] < window.end_ms and r["end_ms"] > window.start_ms


def _missing(window: Window, ranges: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Parts of the window that no earlier fetch covered."""
    gaps, cursor = [], window.start_ms
    for r in sorted(ranges, key=lambda r: r["start_ms"]):
        if r["end_ms"] <= cursor or r["start_ms"] >= window.end_ms:
            continue
        if r["start_ms"] > cursor:
            gaps.append((cursor, r["start_ms"]))
        cursor = max(cursor, r["end_ms"])
    if cursor < window.end_ms:
        gaps.append((cursor, window.end_ms))
    return gaps


def _range(window: Window, rows: int, source: str, resampled_from: str | None, note: str | None) -> dict[str, Any]:
    return {
        "start_ms": window.start_ms, "end_ms": window.end_ms,
        "start": iso_z(ms_to_time(window.start_ms)), "end": iso_z(ms_to_time(window.end_ms)),
        "rows": rows, "source": source, "resampled_from": resampled_from, "note": note, "fetched_at": now_iso(),
    }


def _progress_line(outcome: DatasetResult | Unserved) -> str:
    if isinstance(outcome, DatasetResult):
        return f"{outcome.symbol} {outcome.timeframe}: {outcome.rows} bars from {outcome.source}"
    return f"{outcome.symbol} {outcome.timeframe}: no source could serve"


def _summary(datasets: list[DatasetResult], unserved: list[Unserved]) -> str:
    by_source: dict[str, int] = {}
    for d in datasets:
        by_source[d.source] = by_source.get(d.source, 0) + 1
    served = ", ".join(f"{n} from {s}" for s, n in by_source.items()) or "nothing"
    text = f"{len(datasets)} datasets ({served}); {sum(d.new_rows for d in datasets)} new bars fetched"
    if unserved:
        text += f"; {len(unserved)} symbol/timeframe pairs could not be served"
    if any(d.synthetic for d in datasets):
        text += "; SYNTHETIC data included: not market prices"
    return text
