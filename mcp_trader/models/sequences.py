"""The LSTM's input assembly in numpy: the scaled, front-padded feature cube with a presence channel, and the
index of each row's window in it. The learner (torch) and the ONNX predictor (no torch) both build their
inputs here, so an exported LSTM sees exactly the numbers the native one does."""

import numpy as np

from mcp_trader.models.data import TrainingData


def padded_inputs(data: TrainingData, mean: np.ndarray, std: np.ndarray, seq_len: int) -> np.ndarray:
    """(assets, seq_len - 1 + bars, features + 1) float32: features scaled by the training rows' mean and std,
    missing values at the scaled mean (0), and a last channel that is 1 where the bar had a candle."""
    assets, bars, n = data.cube.shape
    pad = seq_len - 1
    out = np.zeros((assets, pad + bars, n + 1), np.float32)
    scaled = (data.cube - mean.astype(np.float32)) / std.astype(np.float32)
    out[:, pad:, :n] = np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)
    out[data.asset, pad + data.bar, n] = 1.0
    return out


def window_index(data: TrainingData, rows: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Asset (len(rows), 1) and padded-bar (len(rows), seq_len) indices of each row's window in padded_inputs."""
    asset = data.asset[rows].astype(np.int64)[:, None]
    # the cube is front-padded by seq_len - 1 bars, so the window ending at bar b starts at padded index b
    bar = data.bar[rows].astype(np.int64)[:, None] + np.arange(seq_len, dtype=np.int64)[None, :]
    return asset, bar


def windows(padded: np.ndarray, data: TrainingData, rows: np.ndarray, seq_len: int) -> np.ndarray:
    """(len(rows), seq_len, features + 1) float32: each row's window ending at its bar."""
    asset, bar = window_index(data, rows, seq_len)
    return padded[asset, bar]
