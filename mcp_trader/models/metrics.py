"""Out-of-sample scores of class probabilities against labels and realised forward returns."""

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mcp_trader.models.base import BUY, CLASSES, SELL
from mcp_trader.models.calibration import log_loss


class ClassScores(BaseModel):
    precision: float | None  # None when the class was never predicted
    recall: float | None  # None when the class never occurred
    support: int
    predicted: int


class Metrics(BaseModel):
    rows: int
    accuracy: float
    macro_f1: float
    log_loss: float
    per_class: dict[str, ClassScores]
    hit_rate: float | None  # share of BUY/SELL calls whose forward return had the called sign
    directional_calls: int
    ic: float | None  # Spearman rank correlation of P(BUY) − P(SELL) with the forward return (overall: mean of folds')
    r2: float | None = None  # of P(BUY) − P(SELL) as a forecast of the clipped return z, against forecasting 0


def score(y: np.ndarray, proba: np.ndarray, fwd: np.ndarray, z: np.ndarray | None = None,
          by_sign: bool = False) -> Metrics:
    """`z`: the clipped forward return in barrier widths, for R²; `by_sign`: a directional call is the sign of
    P(BUY) − P(SELL) (a regressor's forecast) rather than BUY or SELL being the most likely class."""
    pred = proba.argmax(axis=1)
    expected = proba[:, BUY] - proba[:, SELL]
    per_class, f1s = {}, []
    for code, name in enumerate(CLASSES):
        tp = int(np.sum((pred == code) & (y == code)))
        predicted, support = int(np.sum(pred == code)), int(np.sum(y == code))
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        per_class[name] = ClassScores(precision=precision, recall=recall, support=support, predicted=predicted)
        if support or predicted:  # as scikit-learn: classes absent from both are left out of the mean
            f1s.append(2 * tp / (predicted + support))
    side = np.sign(expected) if by_sign else np.where(pred == BUY, 1.0, np.where(pred == SELL, -1.0, 0.0))
    calls = side != 0
    hits = np.sign(fwd[calls]) == side[calls]
    return Metrics(
        rows=len(y),
        accuracy=float(np.mean(pred == y)) if len(y) else 0.0,
        macro_f1=float(np.mean(f1s)) if f1s else 0.0,
        log_loss=log_loss(y, proba) if len(y) else 0.0,
        per_class=per_class,
        hit_rate=float(np.mean(hits)) if calls.any() else None,
        directional_calls=int(calls.sum()),
        ic=spearman(expected, fwd),
        r2=None if z is None else r_squared(expected, z),
    )


def r_squared(forecast: np.ndarray, actual: np.ndarray) -> float | None:
    """1 − Σ(actual − forecast)² / Σ actual²: the share of squared error saved against always forecasting 0
    (Campbell & Thompson's out-of-sample R², with zero as the benchmark since returns' mean is not known ahead)."""
    ok = np.isfinite(forecast) & np.isfinite(actual)
    total = float(actual[ok] @ actual[ok])
    if ok.sum() < 3 or total == 0:
        return None
    error = actual[ok] - forecast[ok]
    return 1.0 - float(error @ error) / total


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    rx, ry = pd.Series(x[ok]).rank().to_numpy(), pd.Series(y[ok]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return None  # a constant score ranks nothing
    return float(np.corrcoef(rx, ry)[0, 1])
