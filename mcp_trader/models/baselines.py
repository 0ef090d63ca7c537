"""Baselines every model must beat out of sample, fitted on the same training rows as the model.

- majority: the training class frequencies as probabilities, so it always calls the commonest class.
- momentum: the shortest window's past return (ret_<window>), cut into SELL / HOLD / BUY at the
  training quantiles that reproduce the training class shares; each bin's probabilities are the
  label frequencies seen in that bin in training.
"""

import numpy as np

from mcp_trader.models.base import CLASSES
from mcp_trader.models.data import TrainingData


def momentum_feature(data: TrainingData) -> str:
    return next(f for f in data.features if f.startswith("ret_") and f != "ret_1")


def majority(data: TrainingData, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.tile(_frequencies(data.y[train]), (len(rows), 1))


def momentum(data: TrainingData, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    column = data.features.index(momentum_feature(data))
    x_train, y_train = data.X[train, column], data.y[train]
    ok = np.isfinite(x_train)
    shares = np.bincount(y_train[ok], minlength=len(CLASSES)) / max(ok.sum(), 1)
    cuts = np.quantile(x_train[ok], [shares[0], shares[0] + shares[1]]) if ok.any() else np.zeros(2)
    bins_train = np.searchsorted(cuts, x_train[ok])
    table = np.array([_frequencies(y_train[ok][bins_train == b]) for b in range(len(CLASSES))])
    x = data.X[rows, column]
    proba = table[np.searchsorted(cuts, np.nan_to_num(x, nan=np.median(x_train[ok]) if ok.any() else 0.0))]
    return proba


def _frequencies(y: np.ndarray) -> np.ndarray:
    """Class frequencies with one pseudo-count each, so no class gets probability zero."""
    return (np.bincount(y, minlength=len(CLASSES)) + 1.0) / (len(y) + len(CLASSES))
