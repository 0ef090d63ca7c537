"""What every learner shares: the class codes, the progress hook, and the Learner contract."""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from mcp_trader.errors import Cancelled  # noqa: F401 - learners see it raised through Report
from mcp_trader.policy.signals import BUY, CLASSES, HOLD, SELL  # noqa: F401 - the models' class codes

if TYPE_CHECKING:
    from mcp_trader.models.data import TrainingData

Kind = Literal["xgboost", "lstm", "ensemble"]
Variant = Literal["general", "aster_native"]

# report(fraction of this step done in [0, 1], message); it raises Cancelled when the job was cancelled.
Report = Callable[[float, str], None]


def silent(_fraction: float, _message: str) -> None:
    return None


class Learner(Protocol):
    """A classifier over TrainingData rows. `train`, `val` and `rows` are integer row indices into `data`."""

    kind: str
    device: str

    def fit(self, data: "TrainingData", train: np.ndarray, val: np.ndarray, report: Report = silent) -> dict: ...

    def predict_proba(self, data: "TrainingData", rows: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (len(rows), 3), columns in CLASSES order."""
        ...

    def importances(self, data: "TrainingData", rows: np.ndarray) -> dict[str, dict[str, float]] | None: ...

    def save(self, folder: Path) -> list[str]:
        """Write the fitted model's files into `folder`; returns their names."""
        ...


def three_point(z: np.ndarray) -> np.ndarray:
    """A regressor's forecast z (forward return in barrier widths, within ±1) as SELL/HOLD/BUY probabilities: the
    distribution on {−1, 0, +1} barrier widths with mean z and the most mass on HOLD, so P(BUY) − P(SELL) = z and
    everything that reads a model's expected move from its probabilities reads the forecast itself."""
    z = np.clip(np.asarray(z, dtype=np.float64), -1.0, 1.0)
    return np.stack([np.maximum(-z, 0.0), 1.0 - np.abs(z), np.maximum(z, 0.0)], axis=-1)


def class_weights(y: np.ndarray) -> np.ndarray:
    """Per-class weights that make each present class weigh the same in total (inverse frequency)."""
    counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
    weights = np.where(counts > 0, counts.sum() / (len(CLASSES) * np.maximum(counts, 1)), 0.0)
    return weights
