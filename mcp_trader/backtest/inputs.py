"""What a backtest trades on: the candles of its span, ATR, and the signals, from one of three places.

- a model's walk-forward out-of-sample predictions (each test row scored by a model that never saw it),
  on the very candles the model was evaluated on, read back from the store by dataset id;
- a kept model applied to bars after `trained_until`, on a feature set built for the span;
- the rule-based confluence strategy, with no model: BUY/SELL when the confluence score passes a threshold.

Feature sets are built from a warm-up before the traded span, so indicators are settled when it starts.
"""

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mcp_trader.backtest import baselines, edge
from mcp_trader.backtest.params import DEFAULT_MARGIN, Bootstrap, Costs, EdgeUse, Risk
from mcp_trader.backtest.records import DataUsed, SignalSource, Strategy
from mcp_trader.data.models import MarketType
from mcp_trader.data.symbols import parse_symbol
from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.errors import InputError
from mcp_trader.features.dataset import FeatureRequest, build_feature_set
from mcp_trader.features.indicators import atr
from mcp_trader.features.models import FeatureInput
from mcp_trader.features.panel import Panel, align
from mcp_trader.features.spec import make_spec, window_ms
from mcp_trader.models.base import CLASSES
from mcp_trader.models.records import ModelRecord
from mcp_trader.policy import signals as rules
from mcp_trader.policy.rules import Policy
from mcp_trader.timefmt import utc

if TYPE_CHECKING:
    from mcp_trader.home import Home

DEFAULT_DAYS = 365
DEFAULT_MAX_HOLD = 24
MAX_DAYS = 3650
ATR_WARMUP = pd.Timedelta(days=31)  # candles read before the first prediction: ATR(14) settles on any timeframe


class BacktestRequest(BaseModel):
    strategy: Strategy = "model"
    model_id: str | None = None
    signals: SignalSource = "out_of_sample"
    symbols: list[str] | None = None
    timeframe: str | None = None  # the model's; 1h for the confluence strategy
    start: datetime | None = None
    end: datetime | None = None
    days: int | None = Field(None, ge=1, le=MAX_DAYS)
    capital: float = Field(10_000.0, gt=0, le=1e12)
    min_confidence: float = Field(0.5, ge=0, le=1)
    threshold: float = Field(0.5, gt=0, le=1)
    risk: Risk = Risk()
    costs: Costs = Costs()
    cost_margin: float = Field(DEFAULT_MARGIN, ge=0, le=20)
    edge: EdgeUse = "validated"
    bootstrap: Bootstrap = Bootstrap()
    sources: list[str] | None = None
    market: MarketType = "perp"


@dataclass(frozen=True)
class Inputs:
    panel: Panel  # the traded span and assets
    atr: np.ndarray
    signal: np.ndarray  # after the cost gate
    strength: np.ndarray
    fraction: np.ndarray  # of the risk-based size: the share of the expected move left after costs
    policy: Policy  # the limits (the server's, with the request's overrides), exits and holds the run trades by
    history: Panel  # the traded assets over every loaded bar, warm-up included: what the baseline rules read
    span: np.ndarray  # the rows of `history` that are the traded span
    universe: list[str]
    described: str
    rule: dict
    data: list[DataUsed]
    feature_set_id: str | None
    synthetic: bool
    notes: list[str] = field(default_factory=list)

    def candles_hash(self) -> str:
        return self.panel.content_hash()

    def signals_hash(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.signal).tobytes())
        digest.update(np.ascontiguousarray(self.strength).tobytes())
        digest.update(np.ascontiguousarray(self.fraction).tobytes())
        return digest.hexdigest()


async def build_inputs(home: "Home", request: BacktestRequest) -> Inputs:
    check_span(request)
    if request.strategy == "confluence":
        return await _confluence(home, request)
    if request.strategy in baselines.RULES:
        return await _baseline(home, request)
    record = await model_record(home, request)
    if request.signals == "out_of_sample":
        return await _out_of_sample(home, request, record)
    return await _after_training(home, request, record)


def check_span(request: BacktestRequest) -> None:
    if request.start is not None and request.end is not None and _utc(request.start) >= _utc(request.end):
        raise InputError("start", f"{request.start.isoformat()} is not before end ({request.end.isoformat()})",
                         "a start before the end")
    if request.start is not None and request.days is not None:
        raise InputError("days", "give either days or start, not both")


def check_rule_request(model_id: str | None, symbols: list[str] | None, strategy: str = "confluence") -> list[str]:
    """The confluence strategy (or a baseline rule) trades the symbols it is given, with no model: those symbols."""
    if model_id is not None:
        raise InputError("model_id", f"the {strategy} strategy uses no model", "leave model_id out, or "
                         "strategy='model'")
    if not symbols:
        raise InputError("symbols", f"the {strategy} strategy needs the assets to trade",
                         "two to 50 symbols, e.g. ['BTC/USDT', 'ETH/USDT', 'SOL/USDT']")
    return symbols


async def _baseline(home: "Home", request: BacktestRequest) -> Inputs:
    """A baseline rule traded as a strategy: no model, no cost gate, positions held until the rule turns."""
    name = request.strategy
    symbols = check_rule_request(request.model_id, request.symbols, name)
    spec = make_spec(request.timeframe or "1h")
    fs = await build_feature_set(home, _feature_request(request, symbols, spec.timeframe, None, spec.longest))
    traded = [parse_symbol(s, request.market, f"symbols[{i}]").unified for i, s in enumerate(symbols)]
    signal, strength, hold = _on_universe(baselines.rule_signals(name, _columns(fs.panel, traded)), fs.panel, traded)
    min_hold = hold if request.risk.min_hold_bars is None else request.risk.min_hold_bars
    rows = _span_rows(fs.panel.index, request, fs.panel.timeframe, fs.panel.index[0])
    return await _finish(
        home, request, fs.panel, traded, rows, signal, None, fs.record.inputs, fs.id, fs.record.synthetic, fs.notes,
        f"baseline {name}: {baselines.RULES[name]}", {"rule": name}, request.risk.max_hold_bars or 0, min_hold,
        strength,
    )


async def _confluence(home: "Home", request: BacktestRequest) -> Inputs:
    symbols = check_rule_request(request.model_id, request.symbols)
    spec = make_spec(request.timeframe or "1h")
    fs = await build_feature_set(home, _feature_request(request, symbols, spec.timeframe, None, spec.longest))
    traded = [parse_symbol(s, request.market, f"symbols[{i}]").unified for i, s in enumerate(symbols)]
    score = confluence_score(fs.panel, fs.frame)
    signal = rules.from_confluence(score, request.threshold)
    max_hold = _max_hold(request, DEFAULT_MAX_HOLD)
    shortest = spec.bars[spec.shortest]
    expected = edge.expected_from_score(score, edge.barrier_width(fs.panel.close, max_hold or shortest, 1.0, shortest))
    min_hold = shortest if request.risk.min_hold_bars is None else request.risk.min_hold_bars
    rows = _span_rows(fs.panel.index, request, fs.panel.timeframe, fs.panel.index[0])
    return await _finish(
        home, request, fs.panel, traded, rows, signal, expected, fs.record.inputs, fs.id, fs.record.synthetic,
        fs.notes, f"rule-based confluence: BUY when the confluence score ≥ {request.threshold}, SELL when ≤ "
        f"−{request.threshold}", {"threshold": request.threshold}, max_hold, min_hold,
    )


async def model_record(home: "Home", request: BacktestRequest) -> ModelRecord:
    if request.model_id is None:
        raise InputError("model_id", "a model strategy needs a model", "a model id from train_model or list_models, "
                         "or strategy='confluence' for the rule-based strategy")
    record = await (await home.models()).record(request.model_id)
    if request.timeframe is not None and request.timeframe != record.timeframe:
        raise InputError("timeframe", f"model {record.id} trades {record.timeframe} bars", record.timeframe)
    return record


def traded_symbols(request: BacktestRequest, record: ModelRecord) -> list[str]:
    market = _market(record)
    if not request.symbols:
        return list(record.symbols)
    traded = []
    for i, text in enumerate(request.symbols):
        symbol = parse_symbol(text, market, f"symbols[{i}]").unified
        if symbol not in record.symbols:
            raise InputError(f"symbols[{i}]", f"model {record.id} was not trained on {symbol}",
                             ", ".join(record.symbols))
        traded.append(symbol)
    return traded


async def _out_of_sample(home: "Home", request: BacktestRequest, record: ModelRecord) -> Inputs:
    traded = traded_symbols(request, record)
    registry = await home.models()
    predictions = await asyncio.to_thread(pd.read_parquet, registry.folder(record.id) / "oos_predictions.parquet")
    step = pd.Timedelta(milliseconds=timeframe_ms(record.timeframe))
    first, last = predictions["time"].min(), predictions["time"].max()
    panel = await stored_panel(home, record.inputs, record.timeframe, first - max(ATR_WARMUP, baselines.WARMUP),
                               last + step)
    notes = []
    if (request.end is not None and _utc(request.end) < first) or (request.start is not None and _utc(
            request.start) > last):
        raise InputError("start" if request.start is not None else "end",
                         f"the model's out-of-sample predictions cover {first.isoformat()} to {last.isoformat()}",
                         "a span that overlaps them, or signals='after_training' for later bars")
    proba = np.full((len(panel.index), len(panel.symbols), len(CLASSES)), np.nan)
    bar = panel.index.get_indexer(predictions["time"])
    asset = pd.Index(panel.symbols).get_indexer(predictions["symbol"])
    keep = (bar >= 0) & (asset >= 0)
    columns = [f"p_{c.lower()}" for c in CLASSES]
    proba[bar[keep], asset[keep]] = predictions[columns].to_numpy()[keep]
    validated = "edge_scale" in predictions and request.edge == "validated"
    scale = np.ones(panel.shape)  # models trained before validated edge scales trade their implied move
    if validated:
        scale[bar[keep], asset[keep]] = predictions["edge_scale"].to_numpy()[keep]
    signal = rules.for_model(proba, record.labels.target, request.min_confidence)
    expected = scale * edge.expected_from_probabilities(proba, await _barrier_width(home, record, panel))
    rows = _span_rows(panel.index, request, record.timeframe, first, last)
    if validated:
        folds = predictions.groupby("fold")["edge_scale"].first()
        notes.append(f"expected moves scaled by the validated edge of each fold "
                     f"({', '.join(f'{s:.2f}' for s in folds)})")
    return await _finish(
        home, request, panel, traded, rows, signal, expected, record.inputs, record.feature_set_id, record.synthetic,
        notes,
        f"model {record.id} ({record.kind}, {record.variant}): walk-forward out-of-sample predictions, "
        f"{rules.describe(record.labels.target, request.min_confidence)}",
        {"min_confidence": request.min_confidence}, _max_hold(request, record.labels.horizon),
        request.risk.min_hold_bars or 0,
    )


async def _after_training(home: "Home", request: BacktestRequest, record: ModelRecord) -> Inputs:
    from mcp_trader.models.data import check_features, training_data
    from mcp_trader.models.device import resolve_device
    from mcp_trader.models.training import load_learner

    traded = traded_symbols(request, record)
    trained_until = pd.Timestamp(record.trained_until)
    step = pd.Timedelta(milliseconds=timeframe_ms(record.timeframe))
    if request.start is not None and _utc(request.start) <= trained_until:
        raise InputError("start", f"model {record.id} saw labels up to {trained_until.isoformat()}",
                         "a start after that, or signals='out_of_sample' for the walk-forward predictions")
    stored = await (await home.features()).record(record.feature_set_id)
    market = _market(record)
    spec = make_spec(record.timeframe, list(stored.windows))
    fs = await build_feature_set(home, _feature_request(
        request.model_copy(update={"market": market}), record.symbols, record.timeframe, list(stored.windows),
        spec.longest,
    ))
    data = await asyncio.to_thread(training_data, fs, record.variant, record.labels)
    check_features(record.features, data.features, f"model {record.id}")
    after = np.flatnonzero(data.times[data.bar] > trained_until)
    if len(after) == 0:
        raise InputError("end", f"no bars after the model's training data (it saw labels up to "
                         f"{trained_until.isoformat()}); the data ends {fs.panel.index[-1].isoformat()}",
                         "an end later than trained_until, or signals='out_of_sample'")
    learner = load_learner(record.kind, (await home.models()).folder(record.id),
                           resolve_device("auto"))
    probabilities = await asyncio.to_thread(learner.predict_proba, data, after)
    proba = np.full((len(fs.panel.index), len(fs.panel.symbols), len(CLASSES)), np.nan)
    proba[data.bar[after], data.asset[after]] = probabilities
    signal = rules.for_model(proba, record.labels.target, request.min_confidence)
    width = edge.barrier_width(fs.panel.close, record.labels.horizon, record.labels.barrier,
                               record.labels.vol_window or spec.bars[spec.shortest])
    expected = edge_scale_of(record, request.edge) * edge.expected_from_probabilities(proba, width)
    rows = _span_rows(fs.panel.index, request, record.timeframe, trained_until + step)
    return await _finish(
        home, request, fs.panel, traded, rows, signal, expected, fs.record.inputs, fs.id, fs.record.synthetic,
        fs.notes,
        f"model {record.id} ({record.kind}, {record.variant}) on bars after its training data "
        f"({trained_until.isoformat()}), {rules.describe(record.labels.target, request.min_confidence)}",
        {"min_confidence": request.min_confidence},
        _max_hold(request, record.labels.horizon), request.risk.min_hold_bars or 0,
    )


async def _finish(home, request: BacktestRequest, panel: Panel, traded, rows: np.ndarray, signal, expected,
                  inputs: list[FeatureInput], feature_set_id, synthetic: bool, notes: list[str], described: str,
                  rule: dict, max_hold: int, min_hold: int, strength: np.ndarray | None = None) -> Inputs:
    """The traded span and assets cut from the panel, and the signals through the cost gate (a baseline rule, with
    no expected move, is traded as it stands)."""
    if len(rows) < 2:
        raise InputError("start", f"the span holds {len(rows)} bar(s) to trade", "a span of at least two bars")
    columns = np.array([panel.column(s) for s in traded], dtype=np.intp)
    ranges = np.ix_(rows, columns)
    full_atr = atr(panel)
    policy = request.risk.policy(home.settings.limits, max_hold, min_hold)
    sliced = Panel(
        symbols=tuple(traded), timeframe=panel.timeframe, index=panel.index[rows],
        **{name: getattr(panel, name)[ranges] for name in ("open", "high", "low", "close", "volume")},
    )
    used = await _data_used(home, [i for i in inputs if i.symbol in traded])
    if synthetic:
        notes = [*notes, "SYNTHETIC data: these results say nothing about real markets"]
    if expected is None:
        if strength is None:
            raise ValueError("a signal traded as it stands (no expected move) needs its strength")
        gated, strength, fraction = signal[ranges], strength[ranges], np.ones(sliced.shape)
    else:
        gated, strength, fraction, _ = edge.gate(signal[ranges], expected[ranges], request.cost_margin,
                                                 request.costs, policy.limits, request.capital, sliced.close,
                                                 full_atr[ranges], sliced.volume)
        described += (f"; taken only where the expected move over the horizon is at least "
                      f"{1 + request.cost_margin:g} × the round-trip cost, sized by the share of it left after costs")
    if min_hold:
        described += f"; an opposite signal exits after {min_hold} bars held at the earliest"
    return Inputs(
        panel=sliced, atr=full_atr[ranges], signal=gated, strength=strength, fraction=fraction,
        policy=policy, history=_columns(panel, traded), span=rows, universe=list(panel.symbols),
        described=described, rule={**rule, "cost_margin": request.cost_margin, "min_hold_bars": min_hold},
        data=used, feature_set_id=feature_set_id, synthetic=synthetic, notes=notes,
    )


def edge_scale_of(record: ModelRecord, use: EdgeUse) -> float:
    """The kept model's validated scale of its expected moves (1 for a model trained before they were kept, or when
    the implied move is asked for)."""
    return 1.0 if record.edge is None or use == "implied" else record.edge.scale


def _columns(panel: Panel, symbols: list[str]) -> Panel:
    """The panel's every bar for `symbols` only."""
    columns = [panel.column(s) for s in symbols]
    return Panel(symbols=tuple(symbols), timeframe=panel.timeframe, index=panel.index,
                 **{name: getattr(panel, name)[:, columns] for name in ("open", "high", "low", "close", "volume")})


def _on_universe(found: tuple[np.ndarray, np.ndarray, int], panel: Panel,
                 symbols: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """A rule's (signal, strength, hold) on `symbols` placed on the whole panel's columns (zero elsewhere)."""
    signal, strength, hold = found
    out_signal, out_strength = np.zeros(panel.shape, np.int8), np.zeros(panel.shape)
    columns = [panel.column(s) for s in symbols]
    out_signal[:, columns], out_strength[:, columns] = signal, strength
    return out_signal, out_strength, hold


async def _barrier_width(home: "Home", record: ModelRecord, panel: Panel) -> np.ndarray:
    """The width of the model's triple barriers at each bar, as its labels measured it."""
    stored = await (await home.features()).find(record.feature_set_id)
    spec = make_spec(record.timeframe, list(stored.windows) if stored else None)
    window = record.labels.vol_window or spec.bars[spec.shortest]
    return edge.barrier_width(panel.close, record.labels.horizon, record.labels.barrier, window)


async def _data_used(home: "Home", inputs: list[FeatureInput]) -> list[DataUsed]:
    catalog = await home.catalog()
    used = []
    for i in inputs:
        stored = await catalog.find_dataset(i.dataset_id)
        used.append(DataUsed(dataset_id=i.dataset_id, symbol=i.symbol, source=i.source, synthetic=i.synthetic,
                             content_hash=stored.content_hash if stored else "missing"))
    return used


async def stored_panel(home: "Home", inputs: list[FeatureInput], timeframe: str, start: pd.Timestamp,
                        end: pd.Timestamp) -> Panel:
    """The candles a model was built from, read back from the store by dataset id."""
    catalog = await home.catalog()
    frames = {}
    for i in inputs:
        stored = await catalog.dataset(i.dataset_id)
        frames[i.symbol] = await asyncio.to_thread(home.candles.read, Path(stored.path), start, end)
    return align(dict(sorted(frames.items())), timeframe)


def _feature_request(request: BacktestRequest, symbols: list[str], timeframe: str, windows: list[str] | None,
                     longest: str) -> FeatureRequest:
    warm = timedelta(milliseconds=2 * window_ms(longest))
    days = request.days or DEFAULT_DAYS
    base = {"symbols": symbols, "timeframe": timeframe, "windows": windows, "sources": request.sources,
            "market": request.market}
    if request.start is not None:
        return FeatureRequest(**base, start=_utc(request.start) - warm, as_of=request.end)
    if request.end is not None:
        return FeatureRequest(**base, start=_utc(request.end) - timedelta(days=days) - warm, as_of=request.end)
    return FeatureRequest(**base, days=min(MAX_DAYS, days + warm.days + 1))


def _span_rows(index: pd.DatetimeIndex, request: BacktestRequest, timeframe: str, first: pd.Timestamp,
               last: pd.Timestamp | None = None) -> np.ndarray:
    """Bars to trade: within [start, end] (default: the last `days` before the end) and [first, last]."""
    end = min(_utc(request.end), index[-1]) if request.end is not None else index[-1]
    if last is not None:
        end = min(end, last)
    step = pd.Timedelta(milliseconds=timeframe_ms(timeframe))
    if request.start is not None:
        start = _utc(request.start)
    elif request.days is not None or request.strategy != "model" or request.signals == "after_training":
        start = end + step - pd.Timedelta(days=request.days or DEFAULT_DAYS)
    else:
        start = first
    start = max(start, first)
    return np.flatnonzero((index >= start) & (index <= end))


def _market(record: ModelRecord) -> MarketType:
    return "perp" if ":" in record.symbols[0] else "spot"


def _max_hold(request: BacktestRequest, default: int) -> int:
    return default if request.risk.max_hold_bars is None else request.risk.max_hold_bars


def confluence_score(panel: Panel, frame: pd.DataFrame) -> np.ndarray:
    """The confluence score of a feature table as a (bars, assets) array on the panel's grid, NaN where none."""
    column = frame["confluence_score"]
    score = np.full(panel.shape, np.nan)
    rows = panel.index.get_indexer(column.index.get_level_values("time"))
    score[rows, pd.Index(panel.symbols).get_indexer(column.index.get_level_values("symbol"))] = column.to_numpy()
    return score


def _utc(value: datetime) -> pd.Timestamp:
    return pd.Timestamp(utc(value))
