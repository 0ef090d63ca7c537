"""XGBoost learner: multi-class with class-balanced weights and temperature calibration on the validation rows, or
(target `return`) a regression of the clipped forward return in barrier widths whose forecast reads as three-point
probabilities (models.base.three_point); early stopping on the validation rows, gain and SHAP importances from
XGBoost's own tree contributions."""

import json
from pathlib import Path
from time import perf_counter
from typing import cast

import numpy as np
import xgboost as xgb

from mcp_trader.models.base import CLASSES, Report, class_weights, silent, three_point
from mcp_trader.models.calibration import fit_temperature, softmax
from mcp_trader.models.data import TrainingData
from mcp_trader.models.params import XGBParams
from mcp_trader.store.files import write_atomically

SHAP_ROWS = 5000  # rows the SHAP mean |contribution| is averaged over; plenty for a stable ranking


class _Progress(xgb.callback.TrainingCallback):
    def __init__(self, report: Report, rounds: int, metric: str):
        self.report, self.rounds, self.metric = report, rounds, metric

    def after_iteration(self, model, epoch: int, evals_log: dict) -> bool:
        if epoch % 10 == 0:
            loss = evals_log.get("val", {}).get(self.metric, [float("nan")])[-1]
            self.report((epoch + 1) / self.rounds,
                        f"xgboost round {epoch + 1}/{self.rounds}, val {self.metric} {loss:.4f}")
        return False


class XGBoostLearner:
    kind = "xgboost"

    def __init__(self, params: XGBParams, device: str, features: tuple[str, ...] = (), regression: bool = False):
        self.params, self.device, self.features, self.regression = params, device, features, regression
        self.booster: xgb.Booster | None = None
        self.temperature = 1.0

    def fit(self, data: TrainingData, train: np.ndarray, val: np.ndarray, report: Report = silent) -> dict:
        started = perf_counter()
        self.features = data.features
        objective: dict[str, str | int]
        if self.regression:
            objective, metric = {"objective": "reg:squarederror"}, "rmse"
            dtrain, dval = self._matrix(data, train, data.z[train]), self._matrix(data, val, data.z[val])
        else:
            objective, metric = {"objective": "multi:softprob", "num_class": len(CLASSES)}, "mlogloss"
            weights = class_weights(data.y[train])
            dtrain = self._matrix(data, train, data.y[train], weights[data.y[train]])
            dval = self._matrix(data, val, data.y[val])
        p = self.params
        self.booster = xgb.train(
            {
                **objective, "eval_metric": metric,
                "tree_method": "hist", "device": self.device, "max_depth": p.max_depth, "eta": p.learning_rate,
                "subsample": p.subsample, "colsample_bytree": p.colsample_bytree,
                "min_child_weight": p.min_child_weight, "seed": p.seed, "verbosity": 0,
            },
            dtrain, num_boost_round=p.n_estimators, evals=[(dval, "val")], verbose_eval=False,
            callbacks=[_Progress(report, p.n_estimators, metric),
                       xgb.callback.EarlyStopping(rounds=p.early_stopping_rounds, save_best=True)],
        )
        if not self.regression:
            self.temperature = fit_temperature(self._margins(dval), data.y[val])
        return {
            "rounds": self.booster.num_boosted_rounds(),
            "temperature": self.temperature, "train_rows": len(train), "seconds": perf_counter() - started,
        }

    def predict_proba(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        margins = self._margins(self._matrix(data, rows))
        return three_point(margins) if self.regression else softmax(margins, self.temperature)

    def importances(self, data: TrainingData, rows: np.ndarray) -> dict[str, dict[str, float]]:
        """Share of total gain per feature, and mean |SHAP contribution| (summed over classes) on `rows`."""
        booster = self._trained()
        # One tree per class (no vector leaves), so get_score gives one float per feature, never a list.
        gain = cast(dict[str, float], booster.get_score(importance_type="total_gain"))
        total = sum(gain.values()) or 1.0
        sample = rows[np.linspace(0, len(rows) - 1, min(len(rows), SHAP_ROWS)).astype(int)] if len(rows) else rows
        contribs = booster.predict(self._matrix(data, sample), pred_contribs=True)  # (rows, [classes,] features+1)
        if contribs.ndim == 2:
            contribs = contribs[:, None, :]
        shap = np.abs(contribs[:, :, :-1]).sum(axis=1).mean(axis=0) if len(sample) else np.zeros(len(self.features))
        return {
            f: {"gain": gain.get(f, 0.0) / total, "shap": float(shap[i])} for i, f in enumerate(self.features)
        }

    def save(self, folder: Path) -> list[str]:
        raw = self._trained().save_raw("ubj")
        write_atomically(folder / "xgboost.ubj", lambda tmp: Path(tmp).write_bytes(raw))
        meta = {"params": self.params.model_dump(), "features": list(self.features), "temperature": self.temperature,
                "device": self.device, "regression": self.regression}
        write_atomically(folder / "xgboost.json", lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1)))
        return ["xgboost.ubj", "xgboost.json"]

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> "XGBoostLearner":
        meta = json.loads((folder / "xgboost.json").read_text())
        learner = cls(XGBParams(**meta["params"]), device, tuple(meta["features"]), meta.get("regression", False))
        learner.booster = xgb.Booster(model_file=str(folder / "xgboost.ubj"))
        learner.booster.set_param({"device": device})
        learner.temperature = meta["temperature"]
        return learner

    def _matrix(self, data: TrainingData, rows: np.ndarray, label: np.ndarray | None = None,
                weight: np.ndarray | None = None) -> xgb.DMatrix:
        return xgb.DMatrix(data.X[rows], label=label, weight=weight, feature_names=list(data.features), nthread=-1)

    def _margins(self, matrix: xgb.DMatrix) -> np.ndarray:
        return self._trained().predict(matrix, output_margin=True)  # EarlyStopping(save_best) kept the best rounds only

    def _trained(self) -> xgb.Booster:
        if self.booster is None:
            raise RuntimeError("the xgboost learner has not been fitted or loaded")
        return self.booster
