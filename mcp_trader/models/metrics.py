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


def score(y: np.ndarray, proba: np.ndarray, fwd: np.ndarray) -> Metrics:
    pred = proba.argmax(axis=1)
    per_class, f1s = {}, []
    for code, name in enumerate(CLASSES):
        tp = int(np.sum((pred == code) & (y == code)))
        predicted, support = int(np.sum(pred == code)), int(np.sum(y == code))
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        per_class[name] = ClassScores(precision=precision, recall=recall, support=support, predicted=predicted)
        if support or predicted:  # as scikit-learn: classes absent from both are left out of the mean
            f1s.append(2 * tp / (predicted + support))
    calls = (pred == BUY) | (pred == SELL)
    hits = np.sign(fwd[calls]) == np.where(pred[calls] == BUY, 1.0, -1.0)
    return Metrics(
        rows=len(y),
        accuracy=float(np.mean(pred == y)) if len(y) else 0.0,
        macro_f1=float(np.mean(f1s)) if f1s else 0.0,
        log_loss=log_loss(y, proba) if len(y) else 0.0,
        per_class=per_class,
        hit_rate=float(np.mean(hits)) if calls.any() else None,
        directional_calls=int(calls.sum()),
        ic=spearman(proba[:, BUY] - proba[:, SELL], fwd),
    )


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    rx, ry = pd.Series(x[ok]).rank().to_numpy(), pd.Series(y[ok]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return None  # a constant score ranks nothing
    return float(np.corrcoef(rx, ry)[0, 1])
