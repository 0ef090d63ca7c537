"""The parity check: ONNX Runtime's outputs against the native model's on the same rows, output by output.

The relative difference is |onnx − native| / max(|native|, floor). Probabilities are compared almost purely
relatively (floor 1e-6): a float32 softmax keeps a relative error of the order of its logits' error however
small the probability. The return head crosses zero, where any relative figure explodes, so its floor is a
thousandth of its largest magnitude on the rows checked.
"""

import numpy as np

from mcp_trader.errors import InputError
from mcp_trader.export.predictor import OnnxPredictor
from mcp_trader.export.records import ParityFigure
from mcp_trader.models.data import TrainingData

PROBABILITY_FLOOR = 1e-6
RETURN_FLOOR_SHARE = 1e-3


class ParityError(InputError):
    """The ONNX export does not reproduce the model closely enough; nothing was kept."""

    def __init__(self, model_id: str, figures: list[ParityFigure], rows: int, threshold: float):
        self.figures, self.rows, self.threshold = figures, rows, threshold
        worst = max(figures, key=lambda f: f.max_relative_diff)
        super().__init__(
            "model_id",
            f"the ONNX export of model {model_id} failed its parity check: max relative difference "
            f"{worst.max_relative_diff:.3g} ({worst.max_relative_diff:.4%}) on {worst.output}, max absolute "
            f"difference {worst.max_absolute_diff:.3g}, over {rows} held-out rows, above the threshold "
            f"{threshold:.3g} ({threshold:.2%}); nothing was exported",
            "a model whose ONNX graph reproduces it within the threshold",
        )


def compare(output: str, native: np.ndarray, onnx: np.ndarray, floor: float) -> ParityFigure:
    native, onnx = np.asarray(native, np.float64), np.asarray(onnx, np.float64)
    if native.shape != onnx.shape:
        raise ValueError(f"{output}: ONNX shape {onnx.shape} is not the native {native.shape}")
    diff = np.abs(onnx - native)
    if not diff.size:
        return ParityFigure(output=output, max_relative_diff=0.0, max_absolute_diff=0.0, relative_floor=floor)
    # NaN anywhere (one side only, or both) is a failure, never a silent pass
    bad = ~np.isfinite(diff)
    rel = np.where(bad, np.inf, diff / np.maximum(np.abs(native), floor))
    return ParityFigure(output=output, max_relative_diff=float(rel.max()),
                        max_absolute_diff=float(np.where(bad, np.inf, diff).max()), relative_floor=floor)


def measure(native, predictor: OnnxPredictor, data: TrainingData, rows: np.ndarray) -> list[ParityFigure]:
    """Every output the predictor offers: the (blended) probabilities, each part's, and the return head."""
    figures = [compare("probabilities", native.predict_proba(data, rows), predictor.predict_proba(data, rows),
                       PROBABILITY_FLOOR)]
    if predictor.kind == "ensemble":
        for part in ("xgboost", "lstm"):
            figures.append(compare(f"{part}.probabilities", getattr(native, part).predict_proba(data, rows),
                                   predictor.predict_proba(data, rows, part), PROBABILITY_FLOOR))
    if predictor.has_return:
        lstm = native.lstm if predictor.kind == "ensemble" else native
        expected = lstm.predict_return(data, rows)
        floor = max(RETURN_FLOOR_SHARE * float(np.abs(expected).max(initial=0.0)), 1e-12)
        figures.append(compare("return", expected, predictor.predict_return(data, rows), floor))
    return figures
