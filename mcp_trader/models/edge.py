"""How much of a model's implied move its validation rows bear out: the scale of its expected move.

A model's implied move at a row is (P(BUY) − P(SELL)) × the width of the barriers it was trained on. On the rows
the fit held out for validation (after its training rows, before its test rows), the forward return over the
horizon is regressed on that implied move, through the origin: slope = Σ x·y / Σ x². Forward returns of rows less
than a horizon apart overlap, so the slope's standard error is computed as if there were only rows / horizon
independent ones. The scale is the one-sided 95 % lower bound, slope − 1.645 × SE, and 0 when that is negative: a
model whose validation does not show its direction skill beyond noise is given no expected move, and the cost gate
keeps it flat. A perfectly calibrated model has slope 1. Nothing here sees a test row.
"""

import math
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from mcp_trader.models.base import BUY, SELL

if TYPE_CHECKING:
    from mcp_trader.models.base import Learner
    from mcp_trader.models.data import TrainingData

Z_ONE_SIDED_95 = 1.6448536269514722
MIN_ROWS = 100


class EdgeScale(BaseModel):
    slope: float | None = Field(description="Forward return per unit of implied move on the validation rows.")
    standard_error: float | None = Field(description="Of the slope, for overlapping forward returns.")
    scale: float = Field(description="max(0, slope − 1.645 × standard error): what the expected move is multiplied "
                                     "by.")
    rows: int


def edge_scale(implied: np.ndarray, forward: np.ndarray, horizon: int) -> EdgeScale:
    """`implied`: (P(BUY) − P(SELL)) × barrier width per validation row; `forward`: the rows' forward log return."""
    keep = np.isfinite(implied) & np.isfinite(forward)
    x, y = implied[keep], forward[keep]
    if len(x) < MIN_ROWS or not np.any(x):
        return EdgeScale(slope=None, standard_error=None, scale=0.0, rows=len(x))
    sxx = float(x @ x)
    slope = float(x @ y) / sxx
    residual = y - slope * x
    independent = max(len(x) / max(horizon, 1), 2.0)
    variance = float(residual @ residual) / (len(x) - 1)
    error = math.sqrt(variance / sxx * len(x) / independent)
    return EdgeScale(slope=slope, standard_error=error, scale=max(0.0, slope - Z_ONE_SIDED_95 * error),
                     rows=len(x))


def validated_scale(learner: "Learner", data: "TrainingData", val: np.ndarray) -> EdgeScale:
    """The edge scale of a fitted learner on its validation rows (none when the data carries no barrier widths)."""
    if data.width is None or len(val) == 0:
        return EdgeScale(slope=None, standard_error=None, scale=0.0, rows=0)
    proba = learner.predict_proba(data, val)
    return edge_scale((proba[:, BUY] - proba[:, SELL]) * data.width[val], data.fwd[val], data.horizon)
