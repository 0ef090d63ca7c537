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
    reports, rows, probas, base = [], [], [], {name: [] for name in BASELINES}
    learner = None
    for i, split in enumerate(splits):
        learner = make()
        fit = learner.fit(data, split.train, split.val, _within(report, i, len(splits), split.number))
        proba = learner.predict_proba(data, split.test)
        fold_base = {name: fn(data, split.train, split.test) for name, fn in BASELINES.items()}
        reports.append(_fold_report(data, split, proba, fold_base, fit, validated_scale(learner, data, split.val)))
        rows.append(split.test)
        probas.append(proba)
        for name, p in fold_base.items():
            base[name].append(p)
    test, proba = np.concatenate(rows), np.concatenate(probas)
    y, fwd = data.y[test], data.fwd[test]
    overall = _pooled(score(y, proba, fwd), [r.model for r in reports])
    base_scores = {
        name: _pooled(score(y, np.concatenate(p), fwd), [r.baselines[name] for r in reports])
        for name, p in base.items()
    }
    return Evaluation(
        folds=reports, overall=overall, baselines=base_scores, verdict=verdict(overall, base_scores, len(splits)),
        predictions=_predictions(data, splits, test, proba, [r.edge.scale for r in reports]), last=learner,
    )


def verdict(model: Metrics, base: dict[str, Metrics], folds: int) -> Verdict:
    """Beating the baselines means a lower log loss and a higher macro F1 than every one of them, and, on what the
    trades depend on, direction: a higher IC than each (one without an IC counts as 0) and a hit rate above 1/2."""
    direction = (model.ic or 0.0) > max((b.ic or 0.0) for b in base.values()) and (model.hit_rate or 0.0) > 0.5
    beats = direction and all(model.log_loss < b.log_loss and model.macro_f1 > b.macro_f1 for b in base.values())
    names = list(base)
    losses = ", ".join(f"{n} {base[n].log_loss:.4f}" for n in names)
    f1s = ", ".join(f"{n} {base[n].macro_f1:.3f}" for n in names)
    ics = ", ".join(f"{n} {_fmt(base[n].ic)}" for n in names)
    claim = "beats its baselines" if beats else "does NOT beat its baselines"
    return Verdict(beats_baselines=beats, summary=(
        f"Out of sample ({folds} walk-forward folds, {model.rows} test rows) the model {claim}: "
        f"log loss {model.log_loss:.4f} vs {losses}; macro F1 {model.macro_f1:.3f} vs {f1s}; "
        f"IC {_fmt(model.ic)} vs {ics}; directional hit rate {_fmt(model.hit_rate)}. Beating them takes all of a "
        f"lower log loss, a higher macro F1, a higher IC and a hit rate above 0.5: the trades depend on direction."
    ))


def _pooled(metrics: Metrics, folds: list[Metrics]) -> Metrics:
    """Every fold's rows together, but the IC is the mean of the folds' ICs: ranks are compared within a
    fold, so a constant forecast (the majority baseline) that shifts between folds earns no IC."""
    ics = [f.ic for f in folds if f.ic is not None]
    return metrics.model_copy(update={"ic": float(np.mean(ics)) if ics else None})


def _fold_report(data, split: Split, proba, fold_base: dict, fit: dict, edge: EdgeScale) -> FoldReport:
    y, fwd = data.y[split.test], data.fwd[split.test]
    return FoldReport(
        fold=split.number, train=_span(data, split.train), val=_span(data, split.val), test=_span(data, split.test),
        train_rows=len(split.train), val_rows=len(split.val), test_rows=len(split.test), purged_rows=split.purged,
        model=score(y, proba, fwd), baselines={n: score(y, p, fwd) for n, p in fold_base.items()}, fit=fit,
        edge=edge,
    )


def _span(data: TrainingData, rows: np.ndarray) -> Span:
    if len(rows) == 0:
        return Span(start=None, end=None)
    return Span(start=_iso(data.times[data.bar[rows[0]]]), end=_iso(data.times[data.bar[rows[-1]]]))


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


def _iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
