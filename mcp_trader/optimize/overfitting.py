"""The probability of backtest overfitting (Bailey, Borwein, López de Prado & Zhu, 2015), by combinatorially
symmetric cross-validation (CSCV).

Every completed trial of a study is scored on the same out-of-sample bars. Those bars are cut into S blocks (16, in
time order); for each of the C(S, S/2) ways to pick half the blocks as "in sample", the trial with the best Sharpe on
them is found, and its Sharpe on the other half is ranked among all trials': ω = rank / (N + 1), λ = ln(ω / (1 − ω)).
PBO is the share of splits where λ ≤ 0, i.e. the in-sample winner does no better than the median trial out of
sample. A PBO near 0 means selection finds something that persists; near 0.5 or above, picking the best trial is
picking noise. Trials keep, per block, the bar count and the sums of returns and squared returns, which is all a
Sharpe over any union of blocks needs.
"""

from itertools import combinations

import numpy as np
from pydantic import BaseModel, Field

BLOCKS = 16
CELLS = 2_000_000  # split × trial cells held at once


class Overfitting(BaseModel):
    pbo: float = Field(description="Probability of backtest overfitting (0 to 1): the in-sample best trial ranks at "
                                   "or below the median out of sample.")
    trials: int = Field(description="Completed trials compared.")
    blocks: int
    splits: int = Field(description="In-sample / out-of-sample splits evaluated: C(blocks, blocks / 2).")
    median_logit: float = Field(description="Median λ of the in-sample best's out-of-sample rank; below 0: overfit.")
    best_loses_out_of_sample: float = Field(
        description="Share of splits where the in-sample best has a negative out-of-sample Sharpe.")


def block_moments(returns: np.ndarray, blocks: int = BLOCKS) -> list[list[float]]:
    """Per block of `returns` (time order): [bars, Σ returns, Σ returns²]."""
    return [[float(len(part)), float(part.sum()), float(np.square(part).sum())]
            for part in np.array_split(np.asarray(returns, dtype=np.float64), blocks)]


def probability_of_overfitting(moments: np.ndarray | list) -> Overfitting | None:
    """`moments`: trials × blocks × (bars, Σr, Σr²), every trial on the same bars. None with fewer than 2 trials."""
    moments = np.asarray(moments, dtype=np.float64)
    trials, blocks = moments.shape[:2]
    if trials < 2 or blocks < 2 or blocks % 2:
        return None
    halves = np.array([[b in chosen for b in range(blocks)] for chosen in combinations(range(blocks), blocks // 2)],
                      dtype=np.float64)
    chunk = max(1, CELLS // trials)  # splits at a time, so that memory stays flat however many trials
    parts = [_best_out_of_sample(halves[i:i + chunk], moments) for i in range(0, len(halves), chunk)]
    logits, chosen = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Overfitting(pbo=float(np.mean(logits <= 0)), trials=trials, blocks=blocks, splits=len(halves),
                       median_logit=float(np.median(logits)), best_loses_out_of_sample=float(np.mean(chosen < 0)))


def _best_out_of_sample(halves: np.ndarray, moments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per split: λ of the in-sample best trial's out-of-sample rank, and its out-of-sample Sharpe."""
    inside = np.einsum("cb,tbk->ctk", halves, moments)
    outside = moments.sum(axis=1)[None] - inside
    best = np.argmax(_sharpe(inside), axis=1)
    later = _sharpe(outside)
    chosen = later[np.arange(len(halves)), best]
    below = (later < chosen[:, None]).sum(axis=1)
    ties = (later == chosen[:, None]).sum(axis=1)
    omega = (below + (ties + 1) / 2) / (moments.shape[0] + 1)  # rank 1..N, ties at their mean rank
    return np.log(omega / (1 - omega)), chosen


def _sharpe(sums: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe from (bars, Σr, Σr²) on the last axis; 0 where the returns do not vary."""
    bars, total, squares = sums[..., 0], sums[..., 1], sums[..., 2]
    mean = total / bars
    spread = np.sqrt(np.maximum(squares / bars - mean**2, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 1e-15, mean / spread, 0.0)
