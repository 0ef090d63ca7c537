"""Temperature scaling: one scalar T fitted on validation rows so that softmax(logits / T) is calibrated."""

import numpy as np

GOLDEN = (np.sqrt(5) - 1) / 2


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def fit_temperature(logits: np.ndarray, y: np.ndarray, steps: int = 40) -> float:
    """Golden-section search of log T in [-3, 3] for the lowest validation log loss (it is unimodal in T)."""
    if len(y) == 0:
        return 1.0
    lo, hi = -3.0, 3.0
    a, b = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    fa, fb = (log_loss(y, softmax(logits, np.exp(x))) for x in (a, b))
    for _ in range(steps):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - GOLDEN * (hi - lo)
            fa = log_loss(y, softmax(logits, np.exp(a)))
        else:
            lo, a, fa = a, b, fb
            b = lo + GOLDEN * (hi - lo)
            fb = log_loss(y, softmax(logits, np.exp(b)))
    return float(np.exp((lo + hi) / 2))
