"""Leakage: the evaluation finds nothing where there is nothing, the model's inputs never look ahead, and a
planted look-ahead feature is caught, both by the causality check and by the evaluation itself.

- Shuffled labels: with the labels permuted across rows, no feature can predict them; out of sample the
  model must sit at chance (no better than always calling the commonest class) and must not be said to
  beat its baselines. If it did, something other than the features would be carrying the labels.
- Causal inputs: the TrainingData matrix X is recomputed after every candle later than t is perturbed
  or dropped, and its rows at or before t must not change. Labels look ahead by design (they are the
  targets), but a label whose whole horizon ends by t must not change either.
- A planted feature holding the next bar's return is reported by the check, and lifts the evaluation far
  above the baselines: a leak would show in both places.
"""

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from causality import next_bar, non_causal_columns, perturb_after, sample_frames, up_to
from sample_sets import offline_feature_set

from mcp_trader.features import builder
from mcp_trader.features.dataset import FeatureSet
from mcp_trader.features.indicators import log_returns
from mcp_trader.features.panel import align
from mcp_trader.features.spec import make_spec
from mcp_trader.models.base import silent
from mcp_trader.models.data import LabelSpec, TrainingData, training_data
from mcp_trader.models.evaluate import Evaluation, evaluate
from mcp_trader.models.metrics import Metrics
from mcp_trader.models.params import XGBParams
from mcp_trader.models.walkforward import walk_forward
from mcp_trader.models.xgb import XGBoostLearner

HORIZON = 12
LABELS = LabelSpec(horizon=HORIZON)
PARAMS = XGBParams(n_estimators=40, max_depth=3, learning_rate=0.1, early_stopping_rounds=10)
FOLDS = 3
PEEK = "peek_ret_1"  # the next bar's log return, planted as a feature


@pytest.fixture(autouse=True, scope="module")
def one_xgboost_thread():
    """XGBoost's OpenMP threads spin at every barrier: on a small machine busy with other work a fit can take
    50× longer with all cores than with one (seconds instead of 0.1 s). These models are tiny; one thread."""
    with xgb.config_context(nthread=1):
        yield

# ------------------------------------------------------------------------------ evaluation at chance


@pytest.fixture(scope="module")
def fs(tmp_path_factory) -> FeatureSet:
    """Four real assets, 180 days of hourly candles from the bundled sample, through the feature-set builder."""
    return offline_feature_set(tmp_path_factory.mktemp("home"), ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"],
                               datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 29, tzinfo=UTC))


@pytest.fixture(scope="module")
def data(fs) -> TrainingData:
    return training_data(fs, "general", LABELS)


def run(data: TrainingData) -> Evaluation:
    splits = walk_forward(data, FOLDS, HORIZON)
    return evaluate(data, splits, lambda: XGBoostLearner(PARAMS, "cpu"), silent)


def shuffled(data: TrainingData, seed: int = 0) -> TrainingData:
    """Labels (with their forward returns) permuted across the labelled rows; each row keeps its t1, so
    purging still spans the row's own horizon."""
    rows = data.labeled
    source = rows[np.random.default_rng(seed).permutation(len(rows))]
    y, fwd = data.y.copy(), data.fwd.copy()
    y[rows], fwd[rows] = data.y[source], data.fwd[source]
    return dataclasses.replace(data, y=y, fwd=fwd)


def finite(m: Metrics) -> bool:
    values = [m.accuracy, m.macro_f1, m.log_loss, *(x for x in (m.ic, m.hit_rate) if x is not None)]
    return bool(np.isfinite(values).all())


@pytest.fixture(scope="module")
def real(data) -> Evaluation:
    return run(data)


def test_shuffled_labels_score_at_chance(data):
    noise = shuffled(data)
    assert noise.class_counts() == data.class_counts()  # the same labels, only on other rows
    assert np.mean(noise.y[data.labeled] == data.y[data.labeled]) < 0.5
    ev = run(noise)
    model, majority = ev.overall, ev.baselines["majority"]
    assert model.rows > 5000 and finite(model)
    assert model.accuracy <= majority.accuracy + 0.02, (model.accuracy, majority.accuracy)
    assert model.log_loss >= majority.log_loss - 0.005, (model.log_loss, majority.log_loss)
    # and exactly what its calls would score if they were independent of the labels
    calls = np.array([c.predicted for c in model.per_class.values()]) / model.rows
    labels = np.array([c.support for c in model.per_class.values()]) / model.rows
    assert abs(model.accuracy - calls @ labels) < 0.02, (model.accuracy, calls @ labels)
    assert model.ic is not None and abs(model.ic) < 0.05
    for fold in ev.folds:
        assert fold.model.accuracy <= fold.baselines["majority"].accuracy + 0.03
        assert fold.model.log_loss >= fold.baselines["majority"].log_loss - 0.01
    assert not ev.verdict.beats_baselines
    assert "does NOT beat its baselines" in ev.verdict.summary


def test_real_labels_run_through_the_same_pipeline(data, real):
    assert len(real.folds) == FOLDS and real.overall.rows == sum(f.test_rows for f in real.folds)
    assert finite(real.overall) and all(finite(m) for m in real.baselines.values())
    assert all(finite(f.model) for f in real.folds)
    assert set(real.baselines) == {"majority", "momentum"}
    assert real.verdict.summary.startswith(f"Out of sample ({FOLDS} walk-forward folds")
    p = real.predictions[["p_sell", "p_hold", "p_buy"]].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert len(real.predictions) == real.overall.rows


def with_peek(fs: FeatureSet) -> FeatureSet:
    """The feature set plus a column that looks one bar ahead: the next bar's log return."""
    frame = fs.frame.copy()
    frame[PEEK] = next_bar(fs.panel, log_returns(fs.panel))[fs.panel.present]
    return dataclasses.replace(fs, frame=frame)


def test_a_planted_peek_lifts_the_evaluation_far_above_the_baselines(fs, real):
    leaky = training_data(with_peek(fs), "general", LABELS)
    assert leaky.features[-1] == PEEK
    ev = run(leaky)
    model = ev.overall
    assert ev.verdict.beats_baselines, ev.verdict.summary
    assert model.accuracy > max(b.accuracy for b in ev.baselines.values()) + 0.04
    assert model.accuracy > real.overall.accuracy + 0.05
    assert model.log_loss < min(b.log_loss for b in ev.baselines.values()) - 0.03
    importances = ev.last.importances(leaky, walk_forward(leaky, FOLDS, HORIZON)[-1].test)
    assert max(importances, key=lambda f: importances[f]["gain"]) == PEEK


# ---------------------------------------------------------------------------------------- causal inputs

SPEC = make_spec("1h")  # 24h, 7d, 30d: no row before bar 720
REFERENCE = "BTC/USDT"
CUTOFFS = (
    760,  # soon after the warm-up
    1520,  # inside DOGE's gap
    1600,  # just after it
    2000,
    2995,  # near the end
)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """3000 real hourly candles of five assets; SOL lists late, DOGE misses 40 bars."""
    return sample_frames(late={"SOL": 400}, gaps={"DOGE": slice(1500, 1540)})


@pytest.fixture(scope="module")
def cutoffs(frames) -> list[pd.Timestamp]:
    grid = align(frames, "1h").index
    return [grid[k] for k in CUTOFFS]


def feature_set(frames: dict[str, pd.DataFrame], peek: bool = False) -> FeatureSet:
    """What training_data reads from a stored feature set (frame, panel, spec), built in memory."""
    panel = align(frames, "1h")
    table = builder.build(panel, SPEC, REFERENCE)
    fs = FeatureSet(record=None, frame=table.frame, panel=panel, spec=SPEC, cached=False, notes=[])
    return with_peek(fs) if peek else fs


def model_input(variant: str, peek: bool = False):
    """frames → the model's input matrix X, one row per (time, symbol)."""

    def compute(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        data = training_data(feature_set(frames, peek), variant, LABELS)
        index = pd.MultiIndex.from_arrays(
            [data.times[data.bar], np.asarray(data.symbols)[data.asset]], names=["time", "symbol"]
        )
        return pd.DataFrame(data.X, index=index, columns=list(data.features))

    return compute


def settled_labels(variant: str):
    """frames → y, t1 and fwd of every row, indexed by the time its horizon ends (bar + horizon), for the rows
    whose horizon ends within the candles: such a row at time ≤ t saw no candle after t."""

    def compute(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        data = training_data(feature_set(frames), variant, LABELS)
        end = data.bar + HORIZON
        keep = end < len(data.times)
        step = data.times[1] - data.times[0]
        index = pd.MultiIndex.from_arrays(
            [data.times[data.bar[keep]] + HORIZON * step, np.asarray(data.symbols)[data.asset[keep]]],
            names=["time", "symbol"],
        )
        return pd.DataFrame({"y": data.y[keep], "t1": data.t1[keep], "fwd": data.fwd[keep]}, index=index)

    return compute


@pytest.mark.parametrize("variant", ["general", "aster_native"])
def test_the_model_input_matrix_is_causal(frames, cutoffs, variant):
    found = non_causal_columns(model_input(variant), frames, cutoffs)
    assert not found, f"model inputs that change when only candles after t change: {found}"


@pytest.mark.parametrize("variant", ["general", "aster_native"])
def test_labels_depend_only_on_their_own_horizon(frames, cutoffs, variant):
    found = non_causal_columns(settled_labels(variant), frames, cutoffs)
    assert not found, f"labels that change when only candles after their horizon change: {found}"


def test_labels_do_look_ahead_so_only_x_is_checked_for_causality(frames, cutoffs):
    """Not vacuous: perturbing after t changes labels of rows at or before t (their horizon runs past t),
    and the rows of X after t; the checks above hold even so."""
    t = cutoffs[3]
    before = training_data(feature_set(frames), "general", LABELS)
    after = training_data(feature_set(perturb_after(frames, t, np.random.default_rng(1))), "general", LABELS)
    times = before.times[before.bar]
    np.testing.assert_array_equal(before.bar, after.bar)
    pending = (times <= t) & (times > t - HORIZON * (before.times[1] - before.times[0]))
    assert pending.any() and not np.array_equal(before.fwd[pending], after.fwd[pending])
    later = times > t
    assert not np.array_equal(before.X[later], after.X[later], equal_nan=True)
    np.testing.assert_array_equal(before.X[~later], after.X[~later])


def test_the_check_catches_a_planted_peek_and_only_it(frames, cutoffs):
    found = non_causal_columns(model_input("general", peek=True), frames, cutoffs)
    assert set(found) == {(t.isoformat(), how) for t in cutoffs for how in ("perturbed", "truncated")}
    assert all(columns == [PEEK] for columns in found.values()), found
    x = model_input("general", peek=True)(frames)
    assert PEEK in x.columns and x[PEEK].notna().mean() > 0.99
    assert len(up_to(x, cutoffs[0])) > 0
