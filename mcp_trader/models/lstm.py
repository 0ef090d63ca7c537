"""A sequence learner: an LSTM over each asset's last `seq_len` bars, with a class head and a forward-return head.

Inputs are the feature cube scaled by the training rows' mean and std, missing values set to the
scaled mean (0), plus one channel that says whether the bar had a candle. Class probabilities are
calibrated after training with one temperature fitted on the validation rows.
"""

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mcp_trader.models.base import CLASSES, Report, class_weights, silent
from mcp_trader.models.calibration import fit_temperature, softmax
from mcp_trader.models.data import TrainingData
from mcp_trader.models.params import LSTMParams
from mcp_trader.models.sequences import padded_inputs, window_index
from mcp_trader.store.files import write_atomically


class LSTMNet(nn.Module):
    def __init__(self, n_inputs: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(n_inputs, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.classes = nn.Linear(hidden, len(CLASSES))
        self.ret = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.lstm(x)
        last = self.drop(out[:, -1])
        return self.classes(last), self.ret(last).squeeze(-1)


class LSTMLearner:
    kind = "lstm"

    def __init__(self, params: LSTMParams, device: str):
        self.params, self.device = params, device
        self.net: LSTMNet | None = None
        self.mean = self.std = np.zeros(0)
        self.return_std, self.temperature = 1.0, 1.0
        self._cached: tuple[TrainingData, torch.Tensor] | None = None

    def fit(self, data: TrainingData, train: np.ndarray, val: np.ndarray, report: Report = silent) -> dict:
        p, started = self.params, time.perf_counter()
        train, val = train[data.y[train] >= 0], val[data.y[val] >= 0]
        torch.manual_seed(p.seed)
        rng = np.random.default_rng(p.seed)
        self.mean, self.std = _nan_mean_std(data.X[train])
        fwd = data.fwd[train]
        self.return_std = float(np.nanstd(fwd)) if np.isfinite(fwd).any() else 1.0
        self.return_std = self.return_std if self.return_std > 0 else 1.0
        self._cached = None
        self.net = LSTMNet(len(data.features) + 1, p.hidden, p.layers, p.dropout).to(self.device)
        if self.device == "cuda":
            torch.backends.cudnn.benchmark = True
        weights = torch.tensor(class_weights(data.y[train]), dtype=torch.float32, device=self.device)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=p.learning_rate)
        scaler = torch.amp.GradScaler(self.device, enabled=self._fp16)
        best_loss, best_epoch, best_state, epochs_run = math.inf, 0, None, 0
        for epoch in range(p.epochs):
            self._train_epoch(data, rng.choice(train, min(p.samples_per_epoch, len(train)), replace=False),
                              weights, optimizer, scaler, epoch, report)
            epochs_run = epoch + 1
            val_loss = self._val_loss(data, val, weights) if len(val) else math.nan
            report(epochs_run / p.epochs, f"lstm epoch {epochs_run}/{p.epochs}, val loss {val_loss:.4f}")
            if not len(val) or val_loss < best_loss:
                best_loss, best_epoch = val_loss, epochs_run
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            elif epochs_run - best_epoch >= p.patience:
                break
        if best_state is not None:  # None only when every validation loss was NaN
            self.net.load_state_dict(best_state)
        if len(val):
            logits, _ = self._outputs(data, val)
            self.temperature = fit_temperature(logits, data.y[val])
        return {"epochs_run": epochs_run, "best_epoch": best_epoch, "best_val_loss": float(best_loss),
                "temperature": self.temperature, "train_rows": len(train),
                "seconds": round(time.perf_counter() - started, 3)}

    def predict_proba(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        logits, _ = self._outputs(data, rows)
        return softmax(logits, self.temperature)

    def predict_return(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        """The regression head's forward log return over the label horizon."""
        _, returns = self._outputs(data, rows)
        return returns * self.return_std

    def importances(self, data: TrainingData, rows: np.ndarray) -> None:
        return None

    def save(self, folder: Path) -> list[str]:
        if self.net is None:
            raise RuntimeError("the LSTM has not been fitted")
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        write_atomically(folder / "lstm.pt", lambda path: torch.save(state, path))
        meta = {"params": self.params.model_dump(), "n_features": len(self.mean), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "return_std": self.return_std, "temperature": self.temperature,
                "trained_on": self.device}
        write_atomically(folder / "lstm.json", lambda path: path.write_text(json.dumps(meta, indent=1)))
        return ["lstm.pt", "lstm.json"]

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> "LSTMLearner":
        meta = json.loads((folder / "lstm.json").read_text())
        learner = cls(LSTMParams(**meta["params"]), device)
        learner.mean, learner.std = np.array(meta["mean"]), np.array(meta["std"])
        learner.return_std, learner.temperature = meta["return_std"], meta["temperature"]
        p = learner.params
        learner.net = LSTMNet(meta["n_features"] + 1, p.hidden, p.layers, p.dropout).to(device)
        learner.net.load_state_dict(torch.load(folder / "lstm.pt", map_location=device, weights_only=True))
        return learner

    @property
    def _fp16(self) -> bool:
        return self.device == "cuda" and not torch.cuda.is_bf16_supported()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.float16 if self._fp16 else torch.bfloat16)

    def _train_epoch(self, data: TrainingData, rows: np.ndarray, weights: torch.Tensor,
                     optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, epoch: int,
                     report: Report) -> None:
        p, net = self.params, self._fitted()
        net.train()
        batches = range(0, len(rows), p.batch_size)
        for i, start in enumerate(batches):
            batch = rows[start:start + p.batch_size]
            with self._autocast():
                logits, ret = net(self._sequences(data, batch))
            loss = self._loss(data, batch, logits, ret, weights)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            if (i + 1) % 10 == 0:
                report((epoch + (i + 1) / len(batches)) / p.epochs, f"lstm epoch {epoch + 1}/{p.epochs}")

    def _loss(self, data: TrainingData, rows: np.ndarray, logits: torch.Tensor, ret: torch.Tensor,
              weights: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(data.y[rows], dtype=torch.long, device=self.device)
        target = torch.as_tensor(data.fwd[rows] / self.return_std, dtype=torch.float32, device=self.device)
        loss = nn.functional.cross_entropy(logits.float(), y, weight=weights)
        known = torch.isfinite(target)
        if self.params.return_weight > 0 and bool(known.any()):
            loss = loss + self.params.return_weight * nn.functional.mse_loss(ret.float()[known], target[known])
        return loss

    def _val_loss(self, data: TrainingData, rows: np.ndarray, weights: torch.Tensor) -> float:
        total, net = 0.0, self._fitted()
        net.eval()
        with torch.inference_mode():
            for start in range(0, len(rows), self._infer_batch):
                batch = rows[start:start + self._infer_batch]
                with self._autocast():
                    logits, ret = net(self._sequences(data, batch))
                total += float(self._loss(data, batch, logits, ret, weights)) * len(batch)
        return total / len(rows)

    def _fitted(self) -> LSTMNet:
        if self.net is None:
            raise RuntimeError("the LSTM has not been fitted")
        return self.net

    @property
    def _infer_batch(self) -> int:
        return max(self.params.batch_size, 1024)

    def _outputs(self, data: TrainingData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw class logits (float64) and standardized return predictions for `rows`."""
        if self.net is None:
            raise RuntimeError("the LSTM has not been fitted")
        logits, returns = [], []
        self.net.eval()
        with torch.inference_mode():
            for start in range(0, len(rows), self._infer_batch):
                with self._autocast():
                    lo, re = self.net(self._sequences(data, rows[start:start + self._infer_batch]))
                logits.append(lo.float().cpu().numpy())
                returns.append(re.float().cpu().numpy())
        if not logits:
            return np.zeros((0, len(CLASSES))), np.zeros(0)
        return np.concatenate(logits).astype(np.float64), np.concatenate(returns).astype(np.float64)

    def _sequences(self, data: TrainingData, rows: np.ndarray) -> torch.Tensor:
        """(len(rows), seq_len, features + 1): each row's window ending at its bar, gathered from the padded cube."""
        asset, bar = window_index(data, rows, self.params.seq_len)
        return self._inputs(data)[torch.as_tensor(asset, device=self.device), torch.as_tensor(bar, device=self.device)]

    def _inputs(self, data: TrainingData) -> torch.Tensor:
        """The scaled cube with a presence channel, front-padded with seq_len - 1 empty bars, on the device."""
        if self._cached is not None and self._cached[0] is data:
            return self._cached[1]
        tensor = torch.from_numpy(padded_inputs(data, self.mean, self.std, self.params.seq_len)).to(self.device)
        self._cached = (data, tensor)
        return tensor


def _nan_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std over the finite values; std 1 where a column is constant or empty."""
    x = x.astype(np.float64)
    known = np.isfinite(x)
    count = np.maximum(known.sum(axis=0), 1)
    mean = np.where(known, x, 0.0).sum(axis=0) / count
    var = np.where(known, (x - mean) ** 2, 0.0).sum(axis=0) / count
    std = np.sqrt(var)
    return mean, np.where(std > 0, std, 1.0)
