"""The latest trading signals: a model's (or the confluence rule's) decision at one bar, from stored candles.

The decision at bar t is the one run_backtest makes at t (a model with signals='after_training', or the
confluence strategy): the same feature builder, the same learner or its ONNX export, the same signal rules
(mcp_trader.policy.signals) and the same ATR(14). Only a window of recent bars is read — long enough that
every feature has warmed up and its rolling and exponential states have settled — so a call takes well
under a second, and the paper loop can call `decide` on each new bar.

The contract below loads with pydantic only (the tool's schema is built at server start); numpy, pandas and
the learners load on the first call.
"""

import asyncio
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcp_trader.backtest.params import DEFAULT_MARGIN
from mcp_trader.data.models import MarketType
from mcp_trader.data.timeframes import floor_ms, timeframe_ms
from mcp_trader.errors import InputError, NotFoundError
from mcp_trader.features.models import FeatureInput
from mcp_trader.timefmt import now_iso, utc

if TYPE_CHECKING:
    import numpy as np

    from mcp_trader.backtest.inputs import BacktestRequest
    from mcp_trader.features.panel import Panel
    from mcp_trader.features.spec import FeatureSpec
    from mcp_trader.home import Home
    from mcp_trader.models.data import LabelSpec
    from mcp_trader.models.records import ModelRecord
    from mcp_trader.policy.limits import RiskLimits
    from mcp_trader.store.catalog import DatasetRecord

Strategy = Literal["model", "confluence"]
OnnxUse = Literal["auto", "always", "never"]
SignalName = Literal["SELL", "HOLD", "BUY"]
NAMES: dict[int, SignalName] = {-1: "SELL", 0: "HOLD", 1: "BUY"}
CLASS_NAMES = ("SELL", "HOLD", "BUY")  # the probability columns, in mcp_trader.models.base.CLASSES order
# Bars beyond the features' own warm-up, for TA-Lib's Wilder / EMA states (RSI, MACD, NATR, ATR) to forget
# where the window starts: (13/14) ** 600 < 1e-19, below float64 resolution.
SETTLE_BARS = 600


class SignalRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str | None = Field(None, description="A model from train_model / list_models.")
    strategy: Strategy = Field(
        "model", description="model (the default when model_id is given, or no symbols) or confluence: the rule "
                             "BUY when the confluence score ≥ threshold, SELL when ≤ −threshold.")
    symbols: list[str] | None = Field(
        None, description="A model: a subset of the symbols it trades (default all). Confluence: required, two to "
                          "50; BTC joins the feature universe as the reference.")
    timeframe: str | None = Field(None, description="A model's own; 1h for confluence.")
    min_confidence: float = Field(0.5, ge=0, le=1, description="A model's BUY/SELL needs that class most likely "
                                                               "and this likely.")
    threshold: float = Field(0.5, gt=0, le=1, description="Confluence score to act on (0 to 1).")
    as_of: datetime | None = Field(None, description="Decide at the latest stored bar opened at or before this "
                                                     "time (UTC if no zone); default the latest stored bar.")
    use_onnx: OnnxUse = Field("auto", description="auto: the model's newest validated ONNX export when there is "
                                                  "one, else the native learner; always; never.")
    sources: list[str] | None = Field(None, description="Confluence: preferred sources among the stored candles.")
    market: MarketType = Field("perp", description="Confluence: the market of the symbols.")
    cost_margin: float = Field(DEFAULT_MARGIN, ge=0, le=20, description="Act only where the expected move over "
                               "the horizon is at least (1 + cost_margin) × the round-trip cost.")
    capital: float = Field(10_000.0, gt=0, le=1e12, description="The account whose risk-sized order the cost "
                                                                "estimate's market impact is for.")
    edge: Literal["validated", "implied"] = Field("validated", description="A model's expected move: scaled by "
                                                  "what its validation bore out, or as its probabilities imply.")

    @model_validator(mode="before")
    @classmethod
    def _default_strategy(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("strategy") is None:
            chosen = "model" if data.get("model_id") is not None or not data.get("symbols") else "confluence"
            data = {**data, "strategy": chosen}
        return data

    def backtest_request(self) -> "BacktestRequest":
        """The backtest that decides at as_of as these signals do (its last bar)."""
        from mcp_trader.backtest.inputs import BacktestRequest

        return BacktestRequest(
            strategy=self.strategy, model_id=self.model_id, signals="after_training", symbols=self.symbols,
            timeframe=self.timeframe, end=self.as_of, min_confidence=self.min_confidence, threshold=self.threshold,
            sources=self.sources, market=self.market, cost_margin=self.cost_margin, capital=self.capital,
            edge=self.edge,
        )


@dataclass(frozen=True)
class Decision:
    """One symbol's decision at one bar, as the backtest engine receives it (signal, strength, close, ATR)."""

    symbol: str
    time: datetime  # open time of the bar; the decision is taken at its close
    signal: int  # −1 SELL, 0 HOLD, +1 BUY
    strength: float  # ranks simultaneous entries: the winning probability or |score| when signal ≠ 0, else 0
    close: float  # NaN when the symbol has no candle at this bar
    atr: float  # ATR(14) in price units; NaN during its warm-up
    confidence: float  # the most likely class's probability, or |confluence score|; NaN without a prediction
    probabilities: tuple[float, float, float] | None  # SELL, HOLD, BUY (a model)
    score: float | None  # the confluence score (the confluence strategy)
    expected_move: float = float("nan")  # over the horizon, a return (mcp_trader.backtest.edge)
    round_trip_cost: float = float("nan")
    fraction: float = 0.0  # of the risk-based size
    raw_signal: int = 0  # before the cost gate


@dataclass(frozen=True)
class Snapshot:
    time: datetime
    decisions: list[Decision]
    predictor: str
    inputs: list[FeatureInput]
    window_start: datetime
    bars: int
    record: "ModelRecord | None"
    notes: list[str]


class SymbolSignal(BaseModel):
    symbol: str
    signal: SignalName
    confidence: float | None = Field(description="The most likely class's probability (a model), or |confluence "
                                                 "score|; BUY/SELL need it ≥ min_confidence / threshold.")
    probabilities: dict[str, float] | None = Field(description="A model: SELL, HOLD and BUY probabilities.")
    confluence_score: float | None = Field(description="Confluence: the score in [−1, 1].")
    time: str = Field(description="Open time (UTC) of the bar decided at; the decision is taken at its close.")
    close: float | None = Field(description="That bar's close; null when the symbol has no candle there.")
    atr: float | None = Field(description="ATR(14) at that bar, in price units: what stops and sizes use.")
    expected_move: float | None = Field(None, description="Expected return over the horizon: (P(BUY) − P(SELL)) × "
                                                          "the barrier width, or score × a one-σ width.")
    round_trip_cost: float | None = Field(None, description="Fees, slippage and impact in and out, as a return.")
    size_fraction: float | None = Field(None, description="Share of the risk-based size taken: the expected move "
                                                          "left after costs, over the expected move.")
    note: str | None = None


class SignalReport(BaseModel):
    strategy: Strategy
    model_id: str | None
    predictor: str = Field(description="onnx:<export_id>, native (the model's own learner), or rule (confluence).")
    timeframe: str
    time: str = Field(description="Open time (UTC) of the bar decided at.")
    decided_at: str = Field(description="Its close: when these decisions are known, and the next bar's open, "
                                        "where a backtest fills them.")
    rule: dict[str, float] = Field(description="min_confidence (a model) or threshold (confluence).")
    signals: list[SymbolSignal]
    trained_until: str | None = Field(description="A model: the last bar whose label it saw.")
    in_sample: bool = Field(description="True when the bar is inside the model's training data: not a fair test.")
    synthetic: bool = Field(description="True if the candles are generated, not market prices.")
    data: list[FeatureInput] = Field(description="The stored candle dataset behind each symbol of the feature "
                                                 "universe, and its rows in the window read.")
    window_start: str = Field(description="First bar read: the features' warm-up.")
    bars: int = Field(description="Bars read, the decided one last.")
    notes: list[str]
    summary: str
    seconds: float


async def latest_signals(home: "Home", request: SignalRequest) -> SignalReport:
    started = perf_counter()
    snap = await snapshot(home, request)
    return _report(request, snap, round(perf_counter() - started, 3))


async def decide(home: "Home", request: SignalRequest, at: datetime | None = None) -> list[Decision]:
    """Each traded symbol's decision at the latest stored bar ≤ `at` (default request.as_of, else the latest)."""
    if at is not None:
        request = request.model_copy(update={"as_of": at})
    return (await snapshot(home, request)).decisions


async def snapshot(home: "Home", request: SignalRequest) -> Snapshot:
    if request.strategy == "confluence":
        return await _confluence(home, request)
    return await _model(home, request)


async def _model(home: "Home", request: SignalRequest) -> Snapshot:
    from mcp_trader.backtest.inputs import edge_scale_of, traded_symbols
    from mcp_trader.features.spec import make_spec

    record = await _record(home, request)
    traded = traded_symbols(request.backtest_request(), record)
    stored = await (await home.features()).record(record.feature_set_id)
    spec = make_spec(record.timeframe, list(stored.windows))
    panel, inputs = await _window(home, record.inputs, spec, request.as_of, _seq_len(record))
    predictor, name, notes = await _predictor(home, record, request.use_onnx)
    proba = await asyncio.to_thread(_probabilities, panel, spec, inputs, record, predictor)
    window = record.labels.vol_window or spec.bars[spec.shortest]
    decisions = await asyncio.to_thread(_model_decisions, panel, traded, proba, request, record.labels, window,
                                        edge_scale_of(record, request.edge), home.settings.limits)
    if record.variant == "aster_native":
        notes.append(f"aster_native: listing_age and history_bars count from the first bar read ({len(panel.index)} "
                     "bars back), a backtest's from its span's start, so they and the signal can differ from it")
    return _snapshot(panel, decisions, name, inputs, record, notes)


async def _confluence(home: "Home", request: SignalRequest) -> Snapshot:
    from mcp_trader.backtest.inputs import check_rule_request
    from mcp_trader.data.symbols import parse_symbol
    from mcp_trader.features.dataset import FeatureRequest, feature_universe
    from mcp_trader.features.spec import make_spec

    symbols = check_rule_request(request.model_id, request.symbols)
    spec = make_spec(request.timeframe or "1h")
    universe, notes = feature_universe(FeatureRequest(symbols=symbols, timeframe=spec.timeframe,
                                              market=request.market))
    traded = [parse_symbol(s, request.market, f"symbols[{i}]").unified for i, s in enumerate(symbols)]
    stored = await _stored_inputs(home, universe, spec.timeframe, request.sources)
    panel, inputs = await _window(home, stored, spec, request.as_of, 1)
    decisions = await asyncio.to_thread(_confluence_decisions, panel, spec, traded, request, home.settings.limits)
    return _snapshot(panel, decisions, "rule", inputs, None, notes)


async def _record(home: "Home", request: SignalRequest) -> "ModelRecord":
    from mcp_trader.backtest.inputs import model_record

    try:
        return await model_record(home, request.backtest_request())
    except NotFoundError as error:
        raise NotFoundError(f"model_id: {error}") from error


def _seq_len(record: "ModelRecord") -> int:
    """Bars one prediction reads: the LSTM's window, else the bar itself."""
    return int(record.params["lstm"]["seq_len"]) if record.kind in ("lstm", "ensemble") else 1


def window_bars(spec: "FeatureSpec", seq_len: int) -> int:
    """Bars read before the decided one and it: the longest window (training_data drops rows before it),
    once more for the rolling statistics and the LSTM's window, and time for TA-Lib's states to settle."""
    longest = spec.bars[spec.longest]
    return 2 * longest + max(seq_len, SETTLE_BARS)


async def _window(home: "Home", inputs: list[FeatureInput], spec: "FeatureSpec", as_of: datetime | None,
                  seq_len: int) -> tuple["Panel", list[FeatureInput]]:
    """The stored candles of the feature universe, the last `window_bars` bars up to the decided one."""
    from mcp_trader.backtest.inputs import stored_panel

    step = timedelta(milliseconds=timeframe_ms(spec.timeframe))
    last = await _last_stored(home, inputs, spec.timeframe)
    if as_of is not None and _floor(as_of, spec.timeframe) - step > last:
        raise InputError("as_of", f"the stored {spec.timeframe} candles end at {last.isoformat()}, before "
                         f"{utc(as_of).isoformat()}", "an as_of at or before that, or run collect_data to fetch "
                         "the later bars")
    end = _floor(as_of, spec.timeframe) + step if as_of is not None else last + step
    start = end - window_bars(spec, seq_len) * step
    panel = await stored_panel(home, inputs, spec.timeframe, start, end)
    _check_window(panel, spec, as_of, spec.bars[spec.longest] + seq_len)
    counts = {s: int(panel.present[:, j].sum()) for j, s in enumerate(panel.symbols)}
    return panel, [i.model_copy(update={"rows": counts.get(i.symbol, 0)}) for i in inputs]


async def _last_stored(home: "Home", inputs: list[FeatureInput], timeframe: str) -> datetime:
    catalog = await home.catalog()
    ends = []
    for i in inputs:
        stored = await catalog.find_dataset(i.dataset_id)
        if stored is None or stored.last_time is None:
            raise NotFoundError(f"no stored {timeframe} candles for {i.symbol} (dataset {i.dataset_id}); run "
                                f"collect_data for {[x.symbol for x in inputs]} with timeframes ['{timeframe}']")
        ends.append(datetime.fromisoformat(stored.last_time))
    return max(ends)


def _check_window(panel: "Panel", spec: "FeatureSpec", as_of: datetime | None, need: int) -> None:
    tf = spec.timeframe
    if len(panel.index) == 0:
        when = "" if as_of is None else f" at or before {utc(as_of).isoformat()}"
        raise InputError("as_of", f"no {tf} candles are stored{when}",
                         "a later as_of; collect_data fetches earlier history")
    if len(panel.index) < need:
        raise InputError("as_of", f"only {len(panel.index)} {tf} bars are stored up to "
                         f"{panel.index[-1].isoformat()}; the features need {need}",
                         "a later as_of, or collect_data with more days")


def _floor(value: datetime, timeframe: str) -> datetime:
    return datetime.fromtimestamp(floor_ms(int(utc(value).timestamp() * 1000), timeframe) / 1000, UTC)


async def _stored_inputs(home: "Home", symbols: list[str], timeframe: str,
                         sources: list[str] | None) -> list[FeatureInput]:
    """Each symbol's stored dataset, from the first source in the preference order that has one."""
    order = list(sources if sources is not None else home.settings.sources)
    found: dict[str, DatasetRecord] = {}
    for d in await (await home.catalog()).datasets():
        usable = d.symbol in symbols and d.timeframe == timeframe and d.source in order and d.rows > 0
        if usable and (d.symbol not in found or order.index(d.source) < order.index(found[d.symbol].source)):
            found[d.symbol] = d
    missing = [s for s in symbols if s not in found]
    if missing:
        raise NotFoundError(f"no stored {timeframe} candles for {', '.join(missing)} from {', '.join(order)}; run "
                            f"collect_data with symbols {symbols} and timeframes ['{timeframe}']")
    if len({d.synthetic for d in found.values()}) > 1:
        raise InputError("symbols", "some of these symbols' stored candles are synthetic and some are market data; "
                         "correlations between the two mean nothing", "symbols stored from one kind of source, or "
                         "sources=['synthetic']")
    return [FeatureInput(symbol=s, dataset_id=found[s].id, source=found[s].source, synthetic=found[s].synthetic,
                         rows=found[s].rows) for s in symbols]


async def _predictor(home: "Home", record: "ModelRecord", use_onnx: OnnxUse) -> tuple[Any, str, list[str]]:
    """The ONNX export or the native learner, its name in the report, and notes on the choice."""
    export: Path | None = None
    notes: list[str] = []
    if use_onnx != "never":
        export, notes = await _export(home, record, use_onnx == "always")
    if export is not None:
        certificate = export / "export.json"
        predictor = await asyncio.to_thread(_onnx_predictor, str(export), certificate.stat().st_mtime_ns)
        return predictor, f"onnx:{export.name}", notes
    from mcp_trader.models.device import resolve_device
    from mcp_trader.models.training import load_learner

    folder = (await home.models()).folder(record.id)
    learner = await asyncio.to_thread(load_learner, record.kind, folder, resolve_device("auto"))
    return learner, "native", notes


@functools.lru_cache(maxsize=8)
def _onnx_predictor(folder: str, _certificate_mtime: int) -> Any:
    """An export's predictor, kept between calls: creating its ONNX Runtime sessions costs tens of ms (about
    0.1 s for a tree ensemble), more than running them. Exports are immutable; the certificate's mtime is in the
    key all the same."""
    from mcp_trader.export.predictor import OnnxPredictor

    return OnnxPredictor.from_folder(Path(folder))


async def _export(home: "Home", record: "ModelRecord", always: bool) -> tuple[Path | None, list[str]]:
    """The newest export of the whole model (a validated one first; `always` takes an unvalidated one too)."""
    store = await home.exports()
    exports = [e for e in await store.of_model(record.id) if e.kind == record.kind and store.folder(e.id).is_dir()]
    validated = [e for e in exports if e.validated]
    if validated:
        return store.folder(validated[0].id), []
    if always and exports:
        return store.folder(exports[0].id), [f"ONNX export {exports[0].id} was NOT VALIDATED against the model"]
    if always:
        raise InputError("use_onnx", f"model {record.id} has no ONNX export of the whole {record.kind} model",
                         "run export_onnx first, or use_onnx='auto' or 'never'")
    note = f"export {exports[0].id} is not validated: the native learner decided" if exports else None
    return None, [note] if note else []


def _probabilities(panel: "Panel", spec: "FeatureSpec", inputs: list[FeatureInput], record: "ModelRecord",
                   predictor: Any) -> "np.ndarray":
    """(assets, 3) probabilities at the panel's last bar, NaN where a symbol has no row there."""
    import numpy as np

    from mcp_trader.models.data import check_features, training_data

    data = training_data(_feature_set(panel, spec, inputs), record.variant, record.labels)
    check_features(record.features, data.features, f"model {record.id}")
    rows = np.flatnonzero(data.bar == len(panel.index) - 1)
    proba = np.full((len(panel.symbols), len(CLASS_NAMES)), np.nan)
    if len(rows):
        proba[data.asset[rows]] = predictor.predict_proba(data, rows)
    return proba


def _feature_set(panel: "Panel", spec: "FeatureSpec", inputs: list[FeatureInput]):
    """The window's feature set as build_feature_set computes it, kept in memory (nothing is stored)."""
    from mcp_trader import __version__
    from mcp_trader.features.builder import FEATURES_VERSION, build
    from mcp_trader.features.dataset import FeatureSet, feature_set_id_of, reference_symbol
    from mcp_trader.features.models import FeatureSetRecord

    table = build(panel, spec, reference_symbol(panel))
    record = FeatureSetRecord(
        id=feature_set_id_of(panel, spec), created_at=now_iso(),
        timeframe=spec.timeframe, windows=spec.bars, symbols=list(panel.symbols), start=panel.index[0].isoformat(),
        end=panel.index[-1].isoformat(), rows=len(table.frame), columns=list(table.frame.columns),
        content_hash=table.content_hash, input_hash=panel.content_hash(), inputs=inputs,
        synthetic=any(i.synthetic for i in inputs), features_version=FEATURES_VERSION, package_version=__version__,
    )
    return FeatureSet(record, table.frame, panel, spec, cached=False, notes=[])


def _model_decisions(panel: "Panel", traded: list[str], proba: "np.ndarray", request: SignalRequest,
                     labels: "LabelSpec", vol_window: int, scale: float, limits: "RiskLimits") -> list[Decision]:
    """The rule on the model's probabilities at the last bar, its expected move measured on its own barriers and
    scaled by what its validation bore out."""
    import numpy as np

    from mcp_trader.backtest import edge
    from mcp_trader.policy import signals as rules

    signal = rules.for_model(proba, labels.target, request.min_confidence)
    width = edge.barrier_width(panel.close, labels.horizon, labels.barrier, vol_window)[-1]
    expected = scale * edge.expected_from_probabilities(proba, width)
    confidence = np.where(np.isnan(proba).any(axis=1), np.nan, np.nan_to_num(proba).max(axis=1))
    return _decisions(panel, traded, request, limits, signal, expected, confidence,
                      lambda j: None if np.isnan(proba[j]).any() else tuple(float(p) for p in proba[j]), lambda j: None)


def _confluence_decisions(panel: "Panel", spec: "FeatureSpec", traded: list[str],
                          request: SignalRequest, limits: "RiskLimits") -> list[Decision]:
    import numpy as np

    from mcp_trader.backtest import edge
    from mcp_trader.backtest.inputs import DEFAULT_MAX_HOLD
    from mcp_trader.features.builder import build
    from mcp_trader.features.dataset import reference_symbol
    from mcp_trader.policy import signals as rules

    frame = build(panel, spec, reference_symbol(panel)).frame
    latest = frame.xs(panel.index[-1], level="time")["confluence_score"]
    score = np.array([float(latest.get(s, np.nan)) for s in panel.symbols])
    signal = rules.from_confluence(score, request.threshold)
    shortest = spec.bars[spec.shortest]
    expected = edge.expected_from_score(score, edge.barrier_width(panel.close, DEFAULT_MAX_HOLD, 1.0, shortest)[-1])
    return _decisions(panel, traded, request, limits, signal, expected, np.abs(score), lambda j: None,
                      lambda j: None if np.isnan(score[j]) else float(score[j]))


def _decisions(panel: "Panel", traded: list[str], request: SignalRequest, limits: "RiskLimits", signal, expected,
               confidence, probabilities, score) -> list[Decision]:
    """Decisions at the panel's last bar for the traded symbols, through the backtest's cost gate (for the order the
    server's limits size), with the ATR the backtest engine gets."""
    from mcp_trader.backtest import edge
    from mcp_trader.backtest.params import Costs
    from mcp_trader.features.indicators import atr

    ranges = atr(panel)[-1]
    gated, strength, fraction, cost = edge.gate(signal, expected, request.cost_margin, Costs(), limits,
                                                request.capital, panel.close[-1], ranges, panel.volume[-1])
    time = panel.index[-1].to_pydatetime()
    out = []
    for symbol in traded:
        j = panel.column(symbol)
        out.append(Decision(
            symbol=symbol, time=time, signal=int(gated[j]), strength=float(strength[j]),
            close=float(panel.close[-1, j]), atr=float(ranges[j]), confidence=float(confidence[j]),
            probabilities=probabilities(j), score=score(j), expected_move=float(expected[j]),
            round_trip_cost=float(cost[j]), fraction=float(fraction[j]), raw_signal=int(signal[j]),
        ))
    return out


def _snapshot(panel: "Panel", decisions: list[Decision], predictor: str, inputs: list[FeatureInput],
              record: "ModelRecord | None", notes: list[str]) -> Snapshot:
    return Snapshot(
        time=panel.index[-1].to_pydatetime(), decisions=decisions, predictor=predictor, inputs=inputs,
        window_start=panel.index[0].to_pydatetime(), bars=len(panel.index), record=record, notes=notes,
    )


def _report(request: SignalRequest, snap: Snapshot, seconds: float) -> SignalReport:
    record, tf = snap.record, snap.record.timeframe if snap.record else (request.timeframe or "1h")
    step = timedelta(milliseconds=timeframe_ms(tf))
    trained_until = record.trained_until if record else None
    in_sample = trained_until is not None and snap.time <= datetime.fromisoformat(trained_until)
    synthetic = any(i.synthetic for i in snap.inputs)
    signals = [_symbol_signal(d) for d in snap.decisions]
    return SignalReport(
        strategy=request.strategy, model_id=record.id if record else None, predictor=snap.predictor, timeframe=tf,
        time=_iso(snap.time), decided_at=_iso(snap.time + step),
        rule={"min_confidence": request.min_confidence} if record else {"threshold": request.threshold},
        signals=signals, trained_until=trained_until, in_sample=in_sample, synthetic=synthetic, data=snap.inputs,
        window_start=_iso(snap.window_start), bars=snap.bars,
        notes=_notes(snap, request.as_of, step, in_sample, synthetic), summary=_summary(snap, signals, tf),
        seconds=seconds,
    )


def _symbol_signal(d: Decision) -> SymbolSignal:
    present = d.close == d.close  # NaN where the symbol has no candle at the bar
    return SymbolSignal(
        symbol=d.symbol, signal=NAMES[d.signal], confidence=_number(d.confidence),
        probabilities=dict(zip(CLASS_NAMES, d.probabilities, strict=True)) if d.probabilities else None,
        confluence_score=d.score, time=_iso(d.time), close=d.close if present else None, atr=_number(d.atr),
        expected_move=_number(d.expected_move), round_trip_cost=_number(d.round_trip_cost),
        size_fraction=d.fraction if d.signal else None, note=_note(d, present),
    )


def _note(d: Decision, present: bool) -> str | None:
    if not present:
        return "no candle at this bar: HOLD; collect_data may fill it"
    if d.raw_signal and not d.signal:
        return (f"{NAMES[d.raw_signal]} by the rule, but its expected move ({d.expected_move:+.3%}) does not pay the "
                f"round trip ({d.round_trip_cost:.3%}) by the margin: HOLD")
    return None


def _notes(snap: Snapshot, as_of: datetime | None, step: timedelta, in_sample: bool, synthetic: bool) -> list[str]:
    notes = list(snap.notes)
    if in_sample and snap.record is not None:  # in sample only ever for a model's snapshot
        notes.append(f"the model saw labels up to {snap.record.trained_until}: this bar is inside its training "
                     "data, so the decision says nothing about how it trades new bars")
    age = datetime.now(UTC) - (snap.time + step)
    if as_of is None and age > step:
        notes.append(f"the latest stored bar closed {age.total_seconds() / 3600:.0f} h ago: run collect_data for "
                     "current signals")
    if synthetic:
        notes.append("SYNTHETIC data: these signals say nothing about real markets")
    return notes


def _summary(snap: Snapshot, signals: list[SymbolSignal], tf: str) -> str:
    who = f"model {snap.record.id} ({snap.predictor})" if snap.record else "the confluence rule"
    calls = ", ".join(f"{s.symbol} {s.signal}" + (f" {s.confidence:.2f}" if s.confidence is not None else "")
                      for s in signals)
    return f"{who} at the close of the {tf} bar opened {_iso(snap.time)}: {calls}."


def _number(value: float) -> float | None:
    return None if value != value else value  # NaN → None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()
