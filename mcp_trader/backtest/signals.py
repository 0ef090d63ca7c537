"""The signal rules: one function per kind of input, shared by backtests and (later) paper and live trading.

A signal at bar t is −1 (SELL), 0 (HOLD) or +1 (BUY), decided at t's close from what is known then,
with a strength that ranks simultaneous entries.
"""

import numpy as np

from mcp_trader.models.base import BUY, SELL


def from_probabilities(proba: np.ndarray, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """BUY or SELL when that class is the most likely one and at least `min_confidence` likely; else HOLD.
    `proba` has shape (..., 3) in CLASSES order, NaN where there is no prediction; strength is the winning
    class's probability."""
    valid = ~np.isnan(proba).any(axis=-1)
    filled = np.where(valid[..., None], proba, 0.0)
    best = filled.argmax(axis=-1)
    confident = valid & (filled.max(axis=-1) >= min_confidence)
    signal = np.where(confident & (best == BUY), 1, np.where(confident & (best == SELL), -1, 0)).astype(np.int8)
    strength = np.where(signal != 0, filled.max(axis=-1), 0.0)
    return signal, strength


def from_confluence(score: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """BUY when the confluence score is at least `threshold`, SELL when at most −threshold; strength |score|."""
    filled = np.nan_to_num(score, nan=0.0)
    signal = np.where(filled >= threshold, 1, np.where(filled <= -threshold, -1, 0)).astype(np.int8)
    return signal, np.where(signal != 0, np.abs(filled), 0.0)
