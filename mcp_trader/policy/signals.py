"""The signal rules: one function per kind of input, shared by backtests, the optimiser, get_signals and the paper
loop; and the class codes every prediction array and probability column uses.

A signal at bar t is −1 (SELL), 0 (HOLD) or +1 (BUY), decided at t's close from what is known then. Whether it is
taken, and how large, is the cost gate's decision (mcp_trader.backtest.edge).
"""

import numpy as np

CLASSES = ("SELL", "HOLD", "BUY")  # class codes 0, 1, 2 in every array and probability column
SELL, HOLD, BUY = 0, 1, 2


def from_probabilities(proba: np.ndarray, min_confidence: float) -> np.ndarray:
    """BUY or SELL when that class is the most likely one and at least `min_confidence` likely; else HOLD.
    `proba` has shape (..., 3) in CLASSES order, NaN where there is no prediction."""
    valid = ~np.isnan(proba).any(axis=-1)
    filled = np.where(valid[..., None], proba, 0.0)
    best = filled.argmax(axis=-1)
    confident = valid & (filled.max(axis=-1) >= min_confidence)
    return np.where(confident & (best == BUY), 1, np.where(confident & (best == SELL), -1, 0)).astype(np.int8)


def from_forecast(proba: np.ndarray) -> np.ndarray:
    """A return forecast's side: the sign of P(BUY) − P(SELL), the forecast itself (models.base.three_point)."""
    forecast = np.nan_to_num(proba[..., BUY] - proba[..., SELL], nan=0.0)
    return np.sign(forecast).astype(np.int8)


def for_model(proba: np.ndarray, target: str, min_confidence: float) -> np.ndarray:
    """The rule a model's target calls for: a classifier's confident class, a regressor's forecast sign."""
    return from_forecast(proba) if target == "return" else from_probabilities(proba, min_confidence)


def describe(target: str, min_confidence: float) -> str:
    if target == "return":
        return "BUY/SELL by the sign of the return forecast"
    return f"BUY/SELL when the most likely class has probability ≥ {min_confidence}"


def from_confluence(score: np.ndarray, threshold: float) -> np.ndarray:
    """BUY when the confluence score is at least `threshold`, SELL when at most −threshold."""
    filled = np.nan_to_num(score, nan=0.0)
    return np.where(filled >= threshold, 1, np.where(filled <= -threshold, -1, 0)).astype(np.int8)
