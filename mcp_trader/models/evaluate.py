"""Walk-forward evaluation: fit on each split's training rows, score its test rows next to the baselines."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mcp_trader.models import baselines
from mcp_trader.models.base import CLASSES, Learner, Report
from mcp_trader.models.data import TrainingData
from mcp_trader.models.edge import EdgeScale, validated_scale
from mcp_trader.models.metrics import Metrics, score
from mcp_trader.models.records import FoldReport, Span, Verdict
from mcp_trader.models.walkforward import Split
from mcp_trader.timefmt import iso_z

BASELINES = {"majority": baselines.majority, "momentum": baselines.momentum}


@dataclass(frozen=True)
class Evaluation:
    folds: list[FoldReport]
    overall: Metrics
    baselines: dict[str, Metrics]
    verdict: Verdict
    predictions: pd.DataFrame  # out-of-sample probabilities per test row, for backtests of this model
    last: Learner  # the last fold's learner (importances are read from it on its test rows)


def evaluate(data: TrainingData, splits: list[Split], make: Callable[[], Learner], report: Report) -> Evaluation:
    reports, rows, probas, scales = [], [], [], []
    base: dict[str, list[np.ndarray]] = {name: [] for name in BASELINES}
    learner: Learner | None = None
    for i, split in enumerate(splits):
        learner = make()
        fit = learner.fit(data, split.train, split.val, _within(report, i, len(splits), split.number))
        proba = learner.predict_proba(data, split.test)
        fold_base = {name: fn(data, split.train, split.test) for name, fn in BASELINES.items()}
        edge = validated_scale(learner, data, split.val)
        reports.append(_fold_report(data, split, proba, fold_base, fit, edge))
        scales.append(edge.scale)
        rows.append(split.test)
        probas.append(proba)
        for name, p in fold_base.items():
            base[name].append(p)
    if learner is None:
        raise ValueError("evaluate needs at least one split")
    test, proba = np.concatenate(rows), np.concatenate(probas)
    overall = _pooled(_score(data, test, proba), [r.model for r in reports])
    base_scores = {
        name: _pooled(_score(data, test, np.concatenate(p)), [r.baselines[name] for r in reports])
        for name, p in base.items()
    }
    judge = return_verdict if data.target == "return" else verdict
    return Evaluation(
        folds=reports, overall=overall, baselines=base_scores, verdict=judge(overall, base_scores, len(splits)),
        predictions=_predictions(data, splits, test, proba, scales), last=learner,
    )


def verdict(model: Metrics, base: dict[str, Metrics], folds: int) -> Verdict:
    """Beating the baselines means a lower log loss and a higher macro F1 than every one of them, and, on what the
    trades depend on, direction: a higher IC than each (one without an IC counts as 0) and a hit rate above 1/2."""
    beats = _direction(model, base) and all(model.log_loss < b.log_loss and model.macro_f1 > b.macro_f1
                                            for b in base.values())
    return Verdict(beats_baselines=beats, summary=(
        f"{_opening(folds, model, 'model', beats)}log loss {model.log_loss:.4f} vs {_each(base, 'log_loss', 4)}; "
        f"macro F1 {model.macro_f1:.3f} vs {_each(base, 'macro_f1')}; IC {_fmt(model.ic)} vs {_each(base, 'ic')}; "
        f"directional hit rate {_fmt(model.hit_rate)}. Beating them takes all of a lower log loss, a higher macro "
        f"F1, a higher IC and a hit rate above 0.5: the trades depend on direction."
    ))


def return_verdict(model: Metrics, base: dict[str, Metrics], folds: int) -> Verdict:
    """A return forecast beats its baselines when it forecasts the clipped return better than 0 and than each of
    them (R²), ranks forward returns better (IC) and has their sign more often right than wrong (hit rate). Its
    pseudo-probabilities' log loss and F1 say nothing about a regression and are not judged."""
    best_r2 = max([0.0, *((b.r2 or 0.0) for b in base.values())])
    beats = _direction(model, base) and model.r2 is not None and model.r2 > best_r2
    return Verdict(beats_baselines=beats, summary=(
        f"{_opening(folds, model, 'return forecast', beats)}R² {_fmt(model.r2, 4)} vs 0 for forecasting no move, "
        f"{_each(base, 'r2')}; IC {_fmt(model.ic)} vs {_each(base, 'ic')}; directional hit rate "
        f"{_fmt(model.hit_rate)} over {model.directional_calls} calls. Beating them takes all of a positive R² "
        f"above each baseline's, a higher IC and a hit rate above 0.5."
    ))


def _direction(model: Metrics, base: dict[str, Metrics]) -> bool:
    return (model.ic or 0.0) > max((b.ic or 0.0) for b in base.values()) and (model.hit_rate or 0.0) > 0.5


def _opening(folds: int, model: Metrics, what: str, beats: bool) -> str:
    claim = "beats its baselines" if beats else "does NOT beat its baselines"
    return f"Out of sample ({folds} walk-forward folds, {model.rows} test rows) the {what} {claim}: "


def _each(base: dict[str, Metrics], figure: str, digits: int = 3) -> str:
    return ", ".join(f"{name} {_fmt(getattr(m, figure), digits)}" for name, m in base.items())


def _score(data: TrainingData, rows: np.ndarray, proba: np.ndarray) -> Metrics:
    return score(data.y[rows], proba, data.fwd[rows], data.z[rows], by_sign=data.target == "return")


def _pooled(metrics: Metrics, folds: list[Metrics]) -> Metrics:
    """Every fold's rows together, but the IC is the mean of the folds' ICs: ranks are compared within a
    fold, so a constant forecast (the majority baseline) that shifts between folds earns no IC."""
    ics = [f.ic for f in folds if f.ic is not None]
    return metrics.model_copy(update={"ic": float(np.mean(ics)) if ics else None})


def _fold_report(data, split: Split, proba, fold_base: dict, fit: dict, edge: EdgeScale) -> FoldReport:
    return FoldReport(
        fold=split.number, train=_span(data, split.train), val=_span(data, split.val), test=_span(data, split.test),
        train_rows=len(split.train), val_rows=len(split.val), test_rows=len(split.test), purged_rows=split.purged,
        model=_score(data, split.test, proba), baselines={n: _score(data, split.test, p) for n, p in fold_base.items()},
        fit=fit,
        edge=edge,
    )


def _span(data: TrainingData, rows: np.ndarray) -> Span:
    if len(rows) == 0:
        return Span(start=None, end=None)
    return Span(start=iso_z(data.times[data.bar[rows[0]]]), end=iso_z(data.times[data.bar[rows[-1]]]))


def _predictions(data: TrainingData, splits: list[Split], test: np.ndarray, proba: np.ndarray,
                 scales: list[float]) -> pd.DataFrame:
    fold = np.concatenate([np.full(len(s.test), s.number, np.int16) for s in splits])
    scale = np.concatenate([np.full(len(s.test), k) for s, k in zip(splits, scales, strict=True)])
    frame = pd.DataFrame({
        "time": data.times[data.bar[test]], "symbol": np.asarray(data.symbols)[data.asset[test]], "fold": fold,
        "label": np.asarray(CLASSES)[data.y[test]], "fwd_return": data.fwd[test], "edge_scale": scale,
    })
    for k, name in enumerate(CLASSES):
        frame[f"p_{name.lower()}"] = proba[:, k]
    return frame


def _within(report: Report, i: int, n: int, number: int) -> Report:
    return lambda fraction, message: report((i + fraction) / n, f"fold {number}/{n}: {message}")


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"
