"""The LSTM learner on a small synthetic panel: it learns, it is deterministic, it saves, it handles gaps."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mcp_trader.models.base import BUY, HOLD, SELL, Cancelled
from mcp_trader.models.calibration import fit_temperature
from mcp_trader.models.data import TrainingData
from mcp_trader.models.lstm import LSTMLearner
from mcp_trader.models.params import LSTMParams

TINY = LSTMParams(hidden=8, layers=1, seq_len=8, epochs=3, samples_per_epoch=256, batch_size=64, learning_rate=1e-2)
HORIZON = 4


def synthetic(bars: int = 400, start_second: int = 30, seed: int = 0) -> TrainingData:
    """2 assets, 3 features; the class is the sign of feature 0 beyond ±0.5. Asset 1 starts late; NaNs in 1 and 2."""
    rng = np.random.default_rng(seed)
    bar = np.repeat(np.arange(bars), 2)
    asset = np.tile(np.arange(2), bars)
    keep = (asset == 0) | (bar >= start_second)
    bar, asset = bar[keep].astype(np.int32), asset[keep].astype(np.int32)
    X = rng.normal(size=(len(bar), 3)).astype(np.float32)
    X[:, 1] = X[:, 1] * 5 + 10
    X[rng.random(len(bar)) < 0.05, 1] = np.nan
    X[bar < 50, 2] = np.nan  # a feature still warming up
    y = np.where(X[:, 0] > 0.5, BUY, np.where(X[:, 0] < -0.5, SELL, HOLD))
    fwd = 0.01 * X[:, 0] + 0.001 * rng.normal(size=len(bar))
    unlabeled = bar >= bars - HORIZON
    y[unlabeled], fwd[unlabeled] = -1, np.nan
    t1 = np.where(unlabeled, -1, bar + HORIZON)
    return TrainingData(
        features=("f0", "f1", "f2"), symbols=("AAA", "BBB"),
        times=pd.date_range("2024-01-01", periods=bars, freq="h", tz="UTC"),
        X=X, asset=asset, bar=bar, y=y.astype(np.int64), t1=t1, fwd=fwd, horizon=HORIZON,
    )


def splits(data: TrainingData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = data.labeled
    a, b = int(len(rows) * 0.6), int(len(rows) * 0.8)
    return rows[:a], rows[a:b], rows[b:]


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data: TrainingData) -> tuple[LSTMLearner, dict]:
    train, val, _ = splits(data)
    learner = LSTMLearner(TINY, "cpu")
    return learner, learner.fit(data, train, val)


def test_learns_the_signal() -> None:
    data = synthetic()
    train, val, test = splits(data)
    params = TINY.model_copy(update={"hidden": 16, "epochs": 6, "samples_per_epoch": 512})
    learner = LSTMLearner(params, "cpu")
    learner.fit(data, train, val)
    accuracy = float(np.mean(learner.predict_proba(data, test).argmax(axis=1) == data.y[test]))
    assert accuracy > 0.7, accuracy  # chance is about 0.38
    returns = learner.predict_return(data, test)
    assert np.corrcoef(returns, data.fwd[test])[0, 1] > 0.5


def test_probabilities_and_info(data: TrainingData, fitted: tuple[LSTMLearner, dict]) -> None:
    learner, info = fitted
    _, _, test = splits(data)
    proba = learner.predict_proba(data, test)
    assert proba.shape == (len(test), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert set(info) == {"epochs_run", "best_epoch", "best_val_loss", "temperature", "train_rows", "seconds"}
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= TINY.epochs
    assert info["temperature"] > 0 and info["train_rows"] == len(splits(data)[0])
    assert learner.predict_return(data, test).shape == (len(test),)
    assert learner.importances(data, test) is None


def test_deterministic_on_cpu(data: TrainingData, fitted: tuple[LSTMLearner, dict]) -> None:
    train, val, test = splits(data)
    again = LSTMLearner(TINY, "cpu")
    again.fit(data, train, val)
    np.testing.assert_array_equal(again.predict_proba(data, test), fitted[0].predict_proba(data, test))


def test_save_and_load(tmp_path: Path, data: TrainingData, fitted: tuple[LSTMLearner, dict]) -> None:
    learner, _ = fitted
    names = learner.save(tmp_path)
    assert sorted(names) == ["lstm.json", "lstm.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lstm.json", "lstm.pt"]
    loaded = LSTMLearner.load(tmp_path)
    rows = np.arange(len(data.y))
    np.testing.assert_array_equal(loaded.predict_proba(data, rows), learner.predict_proba(data, rows))
    np.testing.assert_array_equal(loaded.predict_return(data, rows), learner.predict_return(data, rows))
    assert loaded.temperature == learner.temperature and loaded.params == learner.params


def test_scaling_from_training_rows_only(data: TrainingData, fitted: tuple[LSTMLearner, dict]) -> None:
    learner, _ = fitted
    train, _, _ = splits(data)
    x = data.X[train].astype(np.float64)
    np.testing.assert_allclose(learner.mean, np.nanmean(x, axis=0), rtol=1e-9)
    np.testing.assert_allclose(learner.std, np.nanstd(x, axis=0), rtol=1e-9)
    assert learner.mean[1] > 5


def test_held_out_rows_do_not_move_the_scaling() -> None:
    data, changed = synthetic(), synthetic()
    train, val, test = splits(data)
    changed.X[np.concatenate([val, test])] *= 100
    params = TINY.model_copy(update={"epochs": 1})
    one, two = LSTMLearner(params, "cpu"), LSTMLearner(params, "cpu")
    one.fit(data, train, val)
    two.fit(changed, train, val)
    np.testing.assert_array_equal(one.mean, two.mean)
    np.testing.assert_array_equal(one.std, two.std)


def test_cancel_stops_fit(data: TrainingData) -> None:
    train, val, _ = splits(data)
    calls = []

    def report(fraction: float, message: str) -> None:
        calls.append((fraction, message))
        if len(calls) == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        LSTMLearner(TINY, "cpu").fit(data, train, val, report)
    assert len(calls) == 2 and all(0 <= f <= 1 for f, _ in calls)


def test_gaps_and_padding_give_finite_output(data: TrainingData, fitted: tuple[LSTMLearner, dict]) -> None:
    learner, _ = fitted
    early = np.flatnonzero(data.bar < TINY.seq_len)  # windows reaching before the first bar
    late_start = np.flatnonzero((data.asset == 1) & (data.bar < 30 + TINY.seq_len))  # windows over missing candles
    nan_features = np.flatnonzero(np.isnan(data.X).any(axis=1))
    for rows in (early, late_start, nan_features):
        assert len(rows)
        proba = learner.predict_proba(data, rows)
        assert np.isfinite(proba).all() and np.isfinite(learner.predict_return(data, rows)).all()


def test_all_nan_feature_is_harmless() -> None:
    data = synthetic(bars=120)
    data.X[:, 2] = np.nan
    train, val, test = splits(data)
    learner = LSTMLearner(TINY.model_copy(update={"epochs": 1}), "cpu")
    learner.fit(data, train, val)
    assert np.isfinite(learner.predict_proba(data, test)).all()


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(20000, 3))
    p = np.exp(logits / 2.0)
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(len(p))[:, None] > p.cumsum(axis=1)).sum(axis=1)
    assert fit_temperature(logits, y) == pytest.approx(2.0, rel=0.1)
