"""The ONNX predictor that live signals use: an export's graphs in ONNX Runtime, with the native learner's contract
(TrainingData + rows → (n, 3) calibrated SELL/HOLD/BUY probabilities) and without torch or xgboost.

Execution providers: TensorRT, then CUDA, when this onnxruntime build has them, the CPU always (nodes a GPU
provider cannot run, such as the tree ensemble, fall back to it inside the session). The LSTM's windows are
assembled by mcp_trader.models.sequences, the code the native learner runs, then fed to the graph.
"""

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mcp_trader.errors import InputError, NotFoundError
from mcp_trader.export.records import RECORD_FILE, ExportRecord, OnnxPart, Part
from mcp_trader.models.base import CLASSES
from mcp_trader.models.data import TrainingData, check_features
from mcp_trader.models.sequences import padded_inputs, windows

log = logging.getLogger(__name__)

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
CPU = "CPUExecutionProvider"
LSTM_CHUNK = 4096  # windows per run: bounds the memory of one (rows, seq_len, features + 1) batch


def available_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def choose_providers(available: Sequence[str] | None = None) -> list[str]:
    """The preferred providers this build has, best first, ending with the CPU."""
    have = available_providers() if available is None else list(available)
    return [p for p in PREFERRED if p in have and p != CPU] + [CPU]


class OnnxPredictor:
    def __init__(self, folder: Path, parts: Sequence[OnnxPart], kind: str, xgboost_weight: float | None = None,
                 providers: Sequence[str] | None = None):
        self.kind, self.xgboost_weight = kind, xgboost_weight
        self.providers = choose_providers() if providers is None else list(providers)
        self._parts = {p.part: p for p in parts}
        self._sessions = {p.part: _session(folder / p.file, self.providers) for p in parts}
        self.features = tuple(parts[0].input.features)
        self._mean = self._std = np.zeros(0)  # read only where there is an lstm part
        self._seq_len = 0
        if "lstm" in self._parts:
            lstm = self._parts["lstm"]
            if lstm.scaling_file is None or lstm.input.seq_len is None:
                raise ValueError("the export's lstm part names no scaling file or no window length")
            scaling = json.loads((folder / lstm.scaling_file).read_text())
            self._mean, self._std = np.asarray(scaling["mean"]), np.asarray(scaling["std"])
            self._seq_len = lstm.input.seq_len
        self._cached: tuple[TrainingData, np.ndarray] | None = None

    @classmethod
    def load(cls, exports_dir: Path, export_id: str, providers: Sequence[str] | None = None) -> "OnnxPredictor":
        """A published export by id, from <home>/exports (Settings.exports_dir)."""
        folder = exports_dir / export_id
        if not (folder / RECORD_FILE).is_file():
            raise NotFoundError(f"no export {export_id!r}; export_onnx returns export ids and trader://exports "
                                "lists them")
        return cls.from_folder(folder, providers)

    @classmethod
    def from_folder(cls, folder: Path, providers: Sequence[str] | None = None) -> "OnnxPredictor":
        """An export's folder: its certificate says which graphs to load and how to feed them."""
        record = ExportRecord.model_validate_json((folder / RECORD_FILE).read_text())
        return cls(folder, record.parts, record.kind, record.xgboost_weight, providers)

    def session(self, part: Part):
        """The part's onnxruntime.InferenceSession, for callers that feed the graph themselves."""
        return self._sessions[part]

    @property
    def used_providers(self) -> list[str]:
        """What the sessions actually run on (a provider that failed to start is not among them)."""
        used = [p for s in self._sessions.values() for p in s.get_providers()]
        return list(dict.fromkeys(used))

    @property
    def has_return(self) -> bool:
        return "lstm" in self._parts

    def predict_proba(self, data: TrainingData, rows: np.ndarray, part: Part | None = None) -> np.ndarray:
        """Calibrated probabilities, (len(rows), 3) float64 in CLASSES order; `part` picks one part of an ensemble."""
        rows = self._rows(data, rows)
        if part is not None or self.kind != "ensemble":
            return self._part_proba(part or self.kind, data, rows)
        w = self.xgboost_weight
        if w is None:
            raise ValueError("the ensemble export has no xgboost weight")
        return w * self._part_proba("xgboost", data, rows) + (1 - w) * self._part_proba("lstm", data, rows)

    def predict_return(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        """The LSTM's forward log return over the label horizon, (len(rows),) float64."""
        if not self.has_return:
            raise InputError("kind", f"a {self.kind} export has no return head", "an lstm or ensemble export")
        return self._lstm(data, self._rows(data, rows))[1]

    def _part_proba(self, part: str, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        if part not in self._parts:
            raise InputError("part", f"this {self.kind} export has no {part} part", ", ".join(self._parts))
        if part == "xgboost":
            return self._xgboost(data, rows)
        return self._lstm(data, rows)[0]

    def _xgboost(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, len(CLASSES)))
        x = np.ascontiguousarray(data.X[rows], dtype=np.float32)
        (proba,) = self._sessions["xgboost"].run(["probabilities"], {"features": x})
        return proba.astype(np.float64)

    def _lstm(self, data: TrainingData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(rows) == 0:
            return np.zeros((0, len(CLASSES))), np.zeros(0)
        seq_len, session = self._seq_len, self._sessions["lstm"]
        padded = self._padded(data, seq_len)
        probas, returns = [], []
        for start in range(0, len(rows), LSTM_CHUNK):
            batch = windows(padded, data, rows[start:start + LSTM_CHUNK], seq_len)
            proba, ret = session.run(["probabilities", "return"], {"sequences": batch})
            probas.append(proba)
            returns.append(ret)
        return np.concatenate(probas).astype(np.float64), np.concatenate(returns).astype(np.float64)

    def _padded(self, data: TrainingData, seq_len: int) -> np.ndarray:
        cached = self._cached  # one read: a predictor shared by concurrent calls never mixes two calls' windows
        if cached is None or cached[0] is not data:
            cached = (data, padded_inputs(data, self._mean, self._std, seq_len))
            self._cached = cached
        return cached[1]

    def _rows(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        check_features(self.features, data.features, "the export", "data", "TrainingData from the model's feature set")
        return np.asarray(rows, dtype=np.int64)


def _session(path: Path, providers: list[str]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's per-node placement notes would flood stderr
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception:  # a GPU provider whose libraries are missing or broken: the CPU still serves
        if providers == [CPU]:
            raise
        log.warning("ONNX Runtime could not start %s for %s; using the CPU", providers, path.name, exc_info=True)
        return ort.InferenceSession(str(path), options, providers=[CPU])
