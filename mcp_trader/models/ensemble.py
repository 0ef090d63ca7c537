"""XGBoost + LSTM: a convex blend of their probabilities, its weight chosen on the validation rows only."""

import json
from pathlib import Path

import numpy as np

from mcp_trader.models.base import Report, silent
from mcp_trader.models.calibration import log_loss
from mcp_trader.models.data import TrainingData
from mcp_trader.models.lstm import LSTMLearner
from mcp_trader.models.params import LSTMParams, XGBParams
from mcp_trader.models.xgb import XGBoostLearner
from mcp_trader.store.files import write_atomically

WEIGHTS = np.linspace(0.0, 1.0, 21)  # candidate XGBoost weights; the LSTM gets the rest


class EnsembleLearner:
    kind = "ensemble"

    def __init__(self, xgb_params: XGBParams, lstm_params: LSTMParams, device: str):
        self.device = device
        self.xgboost = XGBoostLearner(xgb_params, device)
        self.lstm = LSTMLearner(lstm_params, device)
        self.weight = 0.5

    def fit(self, data: TrainingData, train: np.ndarray, val: np.ndarray, report: Report = silent) -> dict:
        xgb_info = self.xgboost.fit(data, train, val, lambda f, m: report(0.3 * f, m))
        lstm_info = self.lstm.fit(data, train, val, lambda f, m: report(0.3 + 0.7 * f, m))
        p_xgb, p_lstm = self.xgboost.predict_proba(data, val), self.lstm.predict_proba(data, val)
        losses = [log_loss(data.y[val], w * p_xgb + (1 - w) * p_lstm) for w in WEIGHTS]
        self.weight = float(WEIGHTS[int(np.argmin(losses))])
        return {"xgboost_weight": self.weight, "val_log_loss": float(min(losses)), "xgboost": xgb_info,
                "lstm": lstm_info}

    def predict_proba(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return self.weight * self.xgboost.predict_proba(data, rows) + (1 - self.weight) * self.lstm.predict_proba(
            data, rows
        )

    def importances(self, data: TrainingData, rows: np.ndarray) -> dict[str, dict[str, float]]:
        return self.xgboost.importances(data, rows)

    def save(self, folder: Path) -> list[str]:
        files = self.xgboost.save(folder) + self.lstm.save(folder)
        write_atomically(folder / "ensemble.json",
                         lambda tmp: Path(tmp).write_text(json.dumps({"xgboost_weight": self.weight})))
        return [*files, "ensemble.json"]

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> "EnsembleLearner":
        learner = cls.__new__(cls)
        learner.device = device
        learner.xgboost = XGBoostLearner.load(folder, device)
        learner.lstm = LSTMLearner.load(folder, device)
        learner.weight = json.loads((folder / "ensemble.json").read_text())["xgboost_weight"]
        return learner
