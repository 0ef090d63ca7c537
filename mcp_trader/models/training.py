"""train_model's core: features → labels → walk-forward evaluation → the kept model → the registry."""

import asyncio
import platform
import secrets
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from mcp_trader import __version__
from mcp_trader.data.models import MarketType
from mcp_trader.errors import InputError
from mcp_trader.features.dataset import FeatureRequest, FeatureSet, build_feature_set
from mcp_trader.models.base import Kind, Learner, Report, Variant, silent
from mcp_trader.models.data import LabelSpec, Target, TrainingData, training_data
from mcp_trader.models.device import Device, resolve_device
from mcp_trader.models.edge import validated_scale
from mcp_trader.models.evaluate import Evaluation, evaluate
from mcp_trader.models.params import LSTMParams, XGBParams
from mcp_trader.models.records import Importance, ModelRecord, WalkForward
from mcp_trader.models.walkforward import Scheme, final_split, walk_forward
from mcp_trader.store.files import write_atomically
from mcp_trader.timefmt import now_iso

if TYPE_CHECKING:
    from mcp_trader.home import Home

DEFAULT_DAYS = 365
VAL_SHARE = 0.2
TEST_SHARE = 0.5


class TrainRequest(BaseModel):
    kind: Kind = "xgboost"
    variant: Variant = "general"
    symbols: list[str]
    timeframe: str = "1h"
    horizon: int = Field(24, ge=1, le=1000)
    barrier: float = Field(1.0, gt=0, le=10)
    target: Target = "barrier"
    days: int | None = None
    start: datetime | None = None
    as_of: datetime | None = None
    windows: list[str] | None = None
    sources: list[str] | None = None
    market: MarketType = "perp"
    device: Device = "auto"
    folds: int = Field(4, ge=2, le=20)
    scheme: Scheme = "expanding"
    embargo: int | None = Field(None, ge=1, description="Bars; default the horizon.")
    xgboost: XGBParams = XGBParams()
    lstm: LSTMParams = LSTMParams()


def check_request(request: TrainRequest) -> None:
    """What the request's fields cannot say alone, refused before any work starts."""
    if request.embargo is not None and request.embargo < request.horizon:
        raise InputError("embargo", f"{request.embargo} bars is shorter than the horizon ({request.horizon})",
                         "at least the horizon, or leave it out")
    if request.target == "return" and request.kind != "xgboost":
        raise InputError("target", f"'return' (regression) is for kind xgboost, not {request.kind}",
                         "barrier or meta for an lstm or ensemble; kind xgboost for return")


async def train(home: "Home", request: TrainRequest, report: Report = silent) -> ModelRecord:
    check_request(request)
    started = perf_counter()
    device = resolve_device(request.device)
    fs = await _feature_set(home, request, report)
    labels = LabelSpec(target=request.target, horizon=request.horizon, barrier=request.barrier)
    data = await asyncio.to_thread(training_data, fs, request.variant, labels)
    embargo = request.embargo or request.horizon
    splits = walk_forward(data, request.folds, embargo, request.scheme, TEST_SHARE, VAL_SHARE)
    registry = await home.models()
    model_id = f"mdl-{request.kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    staging = registry.staging(model_id)
    try:
        record = await asyncio.to_thread(
            _fit, request, fs, data, splits, device, embargo, staging, model_id, report, started
        )
        await registry.publish(record, staging)
    finally:
        if staging.exists():
            await asyncio.to_thread(_remove, staging)
    return record


async def _feature_set(home: "Home", request: TrainRequest, report: Report) -> FeatureSet:
    try:
        return await build_feature_set(home, _feature_request(request), progress=_collect_progress(report))
    except InputError as error:
        if error.field != "windows" or request.windows is not None:
            raise
        # the default windows did not fit: the span is what the caller can change
        raise InputError("days", error.problem, "more days: the longest feature window (30d by default) must fit "
                         "in the span, with room left for training and testing") from error


def make_learner(request: TrainRequest, device: str) -> Learner:
    if request.kind == "xgboost":
        from mcp_trader.models.xgb import XGBoostLearner

        return XGBoostLearner(request.xgboost, device, regression=request.target == "return")
    if request.kind == "lstm":
        from mcp_trader.models.lstm import LSTMLearner

        return LSTMLearner(request.lstm, device)
    from mcp_trader.models.ensemble import EnsembleLearner

    return EnsembleLearner(request.xgboost, request.lstm, device)


def load_learner(kind: str, folder: Path, device: str) -> Learner:
    """A kept model from its registry folder."""
    if kind == "xgboost":
        from mcp_trader.models.xgb import XGBoostLearner

        return XGBoostLearner.load(folder, device)
    if kind == "lstm":
        from mcp_trader.models.lstm import LSTMLearner

        return LSTMLearner.load(folder, device)
    from mcp_trader.models.ensemble import EnsembleLearner

    return EnsembleLearner.load(folder, device)


def _fit(request, fs: FeatureSet, data: TrainingData, splits, device, embargo, staging: Path, model_id, report,
         started) -> ModelRecord:
    evaluation = evaluate(data, splits, lambda: make_learner(request, device), _scaled(report, 0.05, 0.85))
    final = final_split(data, embargo, VAL_SHARE)
    kept = make_learner(request, device)
    final_fit = kept.fit(data, final.train, final.val, _scaled(report, 0.85, 0.98, "final model: "))
    edge = validated_scale(kept, data, final.val)
    importances = _importances(evaluation, data, splits[-1].test)
    artifacts = kept.save(staging) + _write_artifacts(staging, evaluation)
    return ModelRecord(
        id=model_id, created_at=now_iso(), kind=request.kind, variant=request.variant, timeframe=fs.spec.timeframe,
        symbols=list(data.symbols), labels=LabelSpec(target=request.target, horizon=request.horizon,
                                                                     barrier=request.barrier),
        label_counts=data.class_counts(), params=_params(request), features=list(data.features),
        feature_set_id=fs.id, feature_set_hash=fs.record.content_hash, input_hash=fs.record.input_hash,
        inputs=fs.record.inputs, synthetic=fs.record.synthetic,
        walk_forward=WalkForward(folds=len(splits), scheme=request.scheme, embargo=embargo, test_share=TEST_SHARE,
                                 val_share=VAL_SHARE),
        folds=evaluation.folds, overall=evaluation.overall, baselines=evaluation.baselines,
        verdict=evaluation.verdict, final_fit=final_fit, edge=edge, trained_until=_trained_until(data, final),
        importances=importances, device=device, training_seconds=round(perf_counter() - started, 2),
        versions=_versions(request.kind), artifacts=[*artifacts, "model.json"],
    )


def _importances(evaluation: Evaluation, data: TrainingData, rows: np.ndarray) -> list[Importance]:
    values = evaluation.last.importances(data, rows)
    if not values:
        return []
    ranked = sorted(values.items(), key=lambda kv: kv[1]["gain"], reverse=True)
    return [Importance(feature=f, gain=v["gain"], shap=v["shap"]) for f, v in ranked]


def _write_artifacts(folder: Path, evaluation: Evaluation) -> list[str]:
    frame = evaluation.predictions
    write_atomically(folder / "oos_predictions.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    return ["oos_predictions.parquet"]


def _trained_until(data: TrainingData, final) -> str | None:
    rows = np.concatenate([final.train, final.val])
    if len(rows) == 0:
        return None
    return data.times[int(data.t1[rows].max())].strftime("%Y-%m-%dT%H:%M:%SZ")


def _params(request: TrainRequest) -> dict:
    params: dict[str, Any] = {"horizon": request.horizon, "barrier": request.barrier,
                              "device_requested": request.device}
    if request.kind in ("xgboost", "ensemble"):
        params["xgboost"] = request.xgboost.model_dump()
    if request.kind in ("lstm", "ensemble"):
        params["lstm"] = request.lstm.model_dump()
    return params


def _versions(kind: str) -> dict[str, str]:
    packages = ["numpy", "pandas", "ta-lib"] + (["xgboost"] if kind != "lstm" else []) + (
        ["torch"] if kind != "xgboost" else [])
    return {"mcp-trader": __version__, "python": platform.python_version(), **{p: version(p) for p in packages}}


def _feature_request(request: TrainRequest) -> FeatureRequest:
    days = request.days if request.days is not None or request.start is not None else DEFAULT_DAYS
    return FeatureRequest(
        symbols=request.symbols, timeframe=request.timeframe, windows=request.windows, as_of=request.as_of,
        days=days, start=request.start, sources=request.sources, market=request.market,
    )


def _collect_progress(report: Report):
    async def progress(done: float, total: float | None, message: str) -> None:
        report(0.05 * (done / total if total else 0.0), message)

    return progress


def _scaled(report: Report, lo: float, hi: float, prefix: str = "") -> Report:
    return lambda fraction, message: report(lo + (hi - lo) * fraction, prefix + message)


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
