"""The model core on small cases worked out by hand: labels, walk-forward splits, metrics, calibration,
baselines, the XGBoost learner, and the training data built from a real feature set."""

import dataclasses
import itertools
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sample_sets import offline_feature_set

from mcp_trader.errors import Cancelled, InputError
from mcp_trader.features import liquidity
from mcp_trader.features.dataset import FeatureSet
from mcp_trader.models import baselines
from mcp_trader.models.base import BUY, CLASSES, HOLD, SELL
from mcp_trader.models.calibration import fit_temperature, log_loss, softmax
from mcp_trader.models.data import LabelSpec, TrainingData, feature_list, training_data
from mcp_trader.models.evaluate import verdict
from mcp_trader.models.labels import triple_barrier
from mcp_trader.models.metrics import score, spearman
from mcp_trader.models.params import XGBParams
from mcp_trader.models.walkforward import final_split, walk_forward
from mcp_trader.models.xgb import XGBoostLearner


@pytest.fixture(autouse=True, scope="module")
def one_xgboost_thread():
    """XGBoost's OpenMP threads spin at every barrier: on a small machine busy with other work a fit can take
    50× longer with all cores than with one (seconds instead of 0.1 s). These models are tiny; one thread."""
    with xgb.config_context(nthread=1):
        yield

# ---------------------------------------------------------------------------------------------- labels

H = 4
SIGMA = 0.005  # with barrier 1 and horizon 4 the barriers sit at ±0.01 in log price: about ±1 %


def flat(bars: int = 10, assets: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close, high and low all at 100: no barrier is ever touched until a test moves a candle."""
    return np.full((bars, assets), 100.0), np.full((bars, assets), 100.0), np.full((bars, assets), 100.0)


def label(close, high, low, cost=0.0, horizon=H, barrier=1.0, sigma=SIGMA):
    return triple_barrier(close, high, low, np.full(close.shape, sigma), horizon, barrier, cost)


def test_upper_barrier_first_is_buy_decided_at_that_bar():
    close, high, low = flat()
    high[2, 0] = 102.0  # log(1.02) = 0.0198 ≥ 0.01
    low[3, 0] = 98.0  # the lower barrier too, but a bar later
    lab = label(close, high, low)
    assert (lab.y[0, 0], lab.t1[0, 0]) == (BUY, 2)
    assert (lab.y[1, 0], lab.t1[1, 0]) == (BUY, 2)
    assert (lab.y[2, 0], lab.t1[2, 0]) == (SELL, 3)  # entry at bar 2's close (100): only the low at 3 counts


def test_lower_barrier_first_is_sell():
    close, high, low = flat()
    low[1, 0] = 98.5
    high[3, 0] = 102.0
    lab = label(close, high, low)
    assert (lab.y[0, 0], lab.t1[0, 0]) == (SELL, 1)


def test_no_barrier_within_the_horizon_is_hold_at_the_time_limit():
    close, high, low = flat()
    close[4, 0], high[4, 0] = 100.4, 100.9  # log(1.009) = 0.00896 < 0.01
    low[3, 0] = 99.2  # log(0.992) = -0.00803 > -0.01
    high[5, 0] = 103.0  # outside bar 0's horizon (bars 1..4)
    lab = label(close, high, low)
    assert (lab.y[0, 0], lab.t1[0, 0]) == (HOLD, 0 + H)
    assert lab.fwd[0, 0] == pytest.approx(math.log(100.4 / 100.0), abs=1e-15)
    assert (lab.y[1, 0], lab.t1[1, 0]) == (BUY, 5)


def test_both_barriers_in_one_bar_is_hold_at_that_bar():
    close, high, low = flat()
    high[2, 0], low[2, 0] = 102.0, 98.0
    lab = label(close, high, low)
    assert (lab.y[0, 0], lab.t1[0, 0]) == (HOLD, 2)
    assert (lab.y[1, 0], lab.t1[1, 0]) == (HOLD, 2)


def test_a_missing_candle_inside_the_horizon_gives_no_label():
    close, high, low = flat()
    for a in (close, high, low):
        a[3, 0] = np.nan
    high[1, 0] = 102.0  # the barrier is hit before the gap, yet the label needs every candle of its horizon
    lab = label(close, high, low)
    for t in range(4):  # bars 0..2 see the gap in their horizon, bar 3 is the gap
        assert (lab.y[t, 0], lab.t1[t, 0]) == (-1, -1) and np.isnan(lab.fwd[t, 0]), t
    assert lab.y[4, 0] == HOLD and lab.t1[4, 0] == 4 + H  # bars 5..8 are all there


def test_the_last_horizon_bars_have_no_label():
    close, high, low = flat(bars=10)
    lab = label(close, high, low)
    assert lab.y[:, 0].tolist() == [HOLD] * 6 + [-1] * H  # bar 5 needs bars 6..9, the last one
    assert lab.t1[:, 0].tolist() == [t + H for t in range(6)] + [-1] * H
    assert np.isnan(lab.fwd[6:, 0]).all() and (lab.fwd[:6, 0] == 0).all()


def test_cost_widens_both_barriers():
    close, high, low = flat()
    high[2, 0] = 101.5  # log(1.015) = 0.0149: beyond 0.01, short of 0.01 + 0.01
    low[3, 0] = 98.8  # log(0.988) = -0.0121: the same
    without, with_cost = label(close, high, low), label(close, high, low, cost=0.01)
    assert (without.y[0, 0], without.t1[0, 0]) == (BUY, 2)
    assert (with_cost.y[0, 0], with_cost.t1[0, 0]) == (HOLD, H)
    cost = np.zeros(close.shape)
    cost[1, 0] = 0.01  # a per-bar cost only widens that bar's barriers
    per_bar = label(close, high, low, cost=cost)
    assert (per_bar.y[0, 0], per_bar.y[1, 0], per_bar.y[2, 0]) == (BUY, HOLD, SELL)


def test_a_zero_width_barrier_gives_no_label():
    close, high, low = flat()
    lab = label(close, high, low, sigma=0.0)
    assert (lab.y == -1).all() and (lab.t1 == -1).all()


def reference_labels(close, high, low, vol, horizon, barrier, cost):
    """The triple barrier written out plainly, one (bar, asset) at a time."""
    bars, assets = close.shape
    y, t1, fwd = np.full(close.shape, -1), np.full(close.shape, -1), np.full(close.shape, np.nan)
    for k in range(assets):
        for t in range(bars - horizon):
            window = slice(t + 1, t + horizon + 1)
            width = barrier * vol[t, k] * math.sqrt(horizon) + cost[t, k]
            if np.isnan(close[t, k]) or np.isnan(close[window, k]).any() or not width > 0:
                continue
            y[t, k], t1[t, k] = HOLD, t + horizon
            for j in range(t + 1, t + horizon + 1):
                up = math.log(high[j, k] / close[t, k]) >= width
                down = math.log(low[j, k] / close[t, k]) <= -width
                if up or down:
                    y[t, k], t1[t, k] = (HOLD if up and down else BUY if up else SELL), j
                    break
            fwd[t, k] = math.log(close[t + horizon, k] / close[t, k])
    return y, t1, fwd


def test_labels_match_a_plain_implementation_on_random_candles():
    rng = np.random.default_rng(3)
    bars, assets, horizon = 400, 3, 6
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (bars, assets)), axis=0))
    high = close * np.exp(np.abs(rng.normal(0, 0.006, close.shape)))
    low = close * np.exp(-np.abs(rng.normal(0, 0.006, close.shape)))
    for a in (close, high, low):
        a[100:110, 1] = np.nan  # a gap
        a[:50, 2] = np.nan  # a late listing
    vol = np.full(close.shape, 0.01)
    vol[:20] = np.nan  # σ not known yet
    cost = rng.uniform(0, 0.004, close.shape)
    lab = triple_barrier(close, high, low, vol, horizon, 1.2, cost)
    y, t1, fwd = reference_labels(close, high, low, vol, horizon, 1.2, cost)
    np.testing.assert_array_equal(lab.y, y)
    np.testing.assert_array_equal(lab.t1, t1)
    np.testing.assert_array_equal(lab.fwd, fwd)
    assert {BUY, HOLD, SELL} <= set(np.unique(lab.y).tolist())
    labelled = lab.y >= 0
    bar = np.broadcast_to(np.arange(bars)[:, None], close.shape)
    assert (lab.t1[labelled] > bar[labelled]).all() and (lab.t1[labelled] <= bar[labelled] + horizon).all()
    shifted = pd.DataFrame(close).shift(-horizon).to_numpy()
    np.testing.assert_allclose(lab.fwd[labelled], np.log(shifted / close)[labelled], rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------- walk-forward

WF_HORIZON = 10


def synthetic(bars: int = 1500, assets: int = 3, horizon: int = WF_HORIZON, seed: int = 0) -> TrainingData:
    """Random rows in (bar, asset) order: asset 2 lists at bar 200, asset 1 misses bars 700..739 (and the
    bars before the gap have no label); t1 anywhere in (bar, bar + horizon]; the last bars unlabeled."""
    rng = np.random.default_rng(seed)
    bar = np.repeat(np.arange(bars), assets)
    asset = np.tile(np.arange(assets), bars)
    keep = ~((asset == 2) & (bar < 200)) & ~((asset == 1) & (bar >= 700) & (bar < 740))
    bar, asset = bar[keep].astype(np.int32), asset[keep].astype(np.int32)
    y = rng.integers(0, 3, len(bar))
    t1 = bar + rng.integers(1, horizon + 1, len(bar))
    unlabeled = (bar >= bars - horizon) | ((asset == 1) & (bar >= 700 - horizon) & (bar < 740))
    y[unlabeled], t1[unlabeled] = -1, -1
    X = rng.normal(size=(len(bar), 2)).astype(np.float32)
    fwd = np.where(unlabeled, np.nan, rng.normal(0, 0.01, len(bar)))
    return TrainingData(
        features=("a", "b"), symbols=tuple(f"S{k}" for k in range(assets)),
        times=pd.date_range("2024-01-01", periods=bars, freq="h", tz="UTC"), X=X, asset=asset, bar=bar,
        y=y, t1=t1.astype(np.int32), fwd=fwd, horizon=horizon,
    )


@pytest.fixture(scope="module")
def wf_data() -> TrainingData:
    return synthetic()


def span_of(data: TrainingData) -> tuple[int, int]:
    labeled = data.labeled
    return int(data.bar[labeled[0]]), int(data.bar[labeled[-1]]) + 1


@pytest.mark.parametrize("scheme", ["expanding", "rolling"])
@pytest.mark.parametrize("embargo", [WF_HORIZON, 25])
def test_walk_forward_blocks_purging_and_embargo(wf_data, scheme, embargo):
    data, folds, test_share = wf_data, 4, 0.5
    splits = walk_forward(data, folds, embargo, scheme, test_share=test_share, val_share=0.2)
    labeled, first_last = data.labeled, span_of(data)
    first, last = first_last
    bar, t1 = data.bar, data.t1
    test_start = last - int((last - first) * test_share)
    assert [s.number for s in splits] == [1, 2, 3, 4]
    assert splits[0].test_bars[0] == test_start and splits[-1].test_bars[1] == last
    lengths = [s.test_bars[1] - s.test_bars[0] for s in splits]
    assert max(lengths) - min(lengths) <= 1
    for a, b in itertools.pairwise(splits):
        assert a.test_bars[1] == b.test_bars[0]  # contiguous, ordered, non-overlapping
    all_test = np.concatenate([s.test for s in splits])
    np.testing.assert_array_equal(all_test, labeled[bar[labeled] >= test_start])  # the last test_share, each once

    for s in splits:
        (start, train_stop), (val_start, pool_stop), (t_start, t_stop) = s.train_bars, s.val_bars, s.test_bars
        np.testing.assert_array_equal(s.test, labeled[(bar[labeled] >= t_start) & (bar[labeled] < t_stop)])
        assert (data.y[s.train] >= 0).all() and (data.y[s.val] >= 0).all() and (data.y[s.test] >= 0).all()
        assert not set(s.train) & set(s.test) and not set(s.val) & set(s.test) and not set(s.train) & set(s.val)
        assert pool_stop == t_start - embargo and train_stop == val_start - embargo
        # training rows end an embargo before validation starts, labels included
        assert bar[s.train].max() < val_start - embargo and t1[s.train].max() < val_start - embargo
        assert bar[s.val].min() >= val_start and (bar[s.val] < pool_stop).all()
        # no training or validation label window [bar, t1] reaches into [test start − embargo, test stop)
        for rows in (s.train, s.val):
            assert (t1[rows] >= bar[rows]).all() and (t1[rows] < t_start - embargo).all()
        # and nothing more was dropped than purging needs
        pool = labeled[(bar[labeled] >= start) & (bar[labeled] < t_start)]
        keep_train = pool[(bar[pool] < train_stop) & (t1[pool] < train_stop)]
        keep_val = pool[(bar[pool] >= val_start) & (bar[pool] < pool_stop) & (t1[pool] < pool_stop)]
        np.testing.assert_array_equal(s.train, keep_train)
        np.testing.assert_array_equal(s.val, keep_val)
        assert s.purged == len(pool) - len(s.train) - len(s.val) > 0
        assert 0.15 < (pool_stop - val_start) / (pool_stop - start) <= 0.2

    starts = [s.train_bars[0] for s in splits]
    if scheme == "expanding":
        assert starts == [first] * folds
        assert all(len(a.train) < len(b.train) for a, b in itertools.pairwise(splits))
    else:  # a window as long as the first fold's, moving with the test block
        assert starts[0] == first and starts == sorted(starts) and len(set(starts)) == folds
        assert {s.test_bars[0] - s.train_bars[0] for s in splits} == {test_start - first}
        assert len({s.train_bars[1] - s.train_bars[0] for s in splits}) == 1
        assert len({s.val_bars[1] - s.val_bars[0] for s in splits}) == 1
        assert all(bar[s.train].min() >= s.train_bars[0] for s in splits)


def test_walk_forward_rejects_an_embargo_shorter_than_the_horizon(wf_data):
    with pytest.raises(InputError) as raised:
        walk_forward(wf_data, 4, WF_HORIZON - 1)
    assert raised.value.field == "embargo" and "horizon" in raised.value.problem


def test_walk_forward_rejects_too_little_data(wf_data):
    with pytest.raises(InputError) as raised:
        walk_forward(synthetic(bars=200), 4, WF_HORIZON)
    assert raised.value.field == "days" and "folds" in raised.value.problem
    with pytest.raises(InputError) as raised:  # enough rows, but test blocks shorter than 20 bars
        walk_forward(wf_data, 60, WF_HORIZON)
    assert raised.value.field == "days" and "60 walk-forward folds" in raised.value.problem
    empty = synthetic(bars=300)
    empty = dataclasses.replace(empty, y=np.full_like(empty.y, -1))
    with pytest.raises(InputError) as raised:
        walk_forward(empty, 2, WF_HORIZON)
    assert raised.value.field == "days"


def test_final_split_uses_every_labelled_row_but_the_purged_gap(wf_data):
    data, embargo = wf_data, 15
    split = final_split(data, embargo, val_share=0.2)
    labeled, bar, t1 = data.labeled, data.bar, data.t1
    first, last = span_of(data)
    (start, train_stop), (val_start, _) = split.train_bars, split.val_bars
    assert start == first and val_start - train_stop == embargo and len(split.test) == 0
    gap = labeled[(bar[labeled] >= train_stop) & (bar[labeled] < val_start)]
    unsettled = labeled[(bar[labeled] < train_stop) & (t1[labeled] >= train_stop)]  # decided inside the gap
    assert len(gap) and len(unsettled)
    np.testing.assert_array_equal(np.sort(np.concatenate([split.train, split.val, gap, unsettled])), labeled)
    assert split.val[-1] == labeled[-1]  # the newest labels are used
    assert split.purged == len(gap) + len(unsettled)
    assert 0.15 < (last - val_start) / (last - first) <= 0.21


# --------------------------------------------------------------------------------------------- metrics

Y = np.array([BUY, BUY, SELL, HOLD, HOLD, SELL, BUY, HOLD])
PRED = np.array([BUY, SELL, SELL, HOLD, BUY, SELL, BUY, HOLD])
FWD = np.array([0.02, -0.01, -0.03, 0.001, -0.002, 0.01, 0.015, -0.004])


def confident(pred: np.ndarray, p: float = 0.6) -> np.ndarray:
    proba = np.full((len(pred), 3), (1 - p) / 2)
    proba[np.arange(len(pred)), pred] = p
    return proba


def test_score_by_hand():
    m = score(Y, confident(PRED), FWD)
    assert m.rows == 8
    assert m.accuracy == pytest.approx(6 / 8)
    # SELL: tp 2, predicted 3, support 2; HOLD: tp 2, predicted 2, support 3; BUY: tp 2, predicted 3, support 3
    sell, hold, buy = m.per_class["SELL"], m.per_class["HOLD"], m.per_class["BUY"]
    assert (sell.precision, sell.recall, sell.support, sell.predicted) == (pytest.approx(2 / 3), 1.0, 2, 3)
    assert (hold.precision, hold.recall, hold.support, hold.predicted) == (1.0, pytest.approx(2 / 3), 3, 2)
    assert (buy.precision, buy.recall, buy.support, buy.predicted) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3, 3)
    f1 = [2 * c.precision * c.recall / (c.precision + c.recall) for c in (sell, hold, buy)]
    assert f1 == pytest.approx([0.8, 0.8, 2 / 3])
    assert m.macro_f1 == pytest.approx(np.mean(f1))
    assert m.log_loss == pytest.approx(-(6 * math.log(0.6) + 2 * math.log(0.2)) / 8)
    # calls: BUY +0.02 hit, SELL −0.01 hit, SELL −0.03 hit, BUY −0.002 miss, SELL +0.01 miss, BUY +0.015 hit
    assert m.directional_calls == 6 and m.hit_rate == pytest.approx(4 / 6)
    signal = pd.Series(confident(PRED)[:, BUY] - confident(PRED)[:, SELL])
    assert m.ic == pytest.approx(signal.corr(pd.Series(FWD), method="spearman"))


def test_score_edge_cases():
    m = score(Y, np.full((8, 3), 1 / 3), FWD)  # a constant score: argmax 0 everywhere, nothing to rank
    assert m.ic is None and m.accuracy == pytest.approx(2 / 8)
    assert m.log_loss == pytest.approx(math.log(3))
    y, pred = np.array([SELL, BUY, BUY]), np.array([BUY, BUY, BUY])
    m = score(y, confident(pred), np.array([0.01, 0.02, -0.01]))
    assert m.per_class["HOLD"].precision is None and m.per_class["HOLD"].recall is None  # left out of the mean
    assert m.per_class["SELL"].precision is None and m.per_class["SELL"].recall == 0.0
    assert m.macro_f1 == pytest.approx((0.0 + 0.8) / 2)
    assert m.hit_rate == pytest.approx(2 / 3) and m.ic is None  # every row has the same score
    m = score(np.array([HOLD, HOLD]), confident(np.array([HOLD, HOLD])), np.array([0.01, -0.01]))
    assert m.hit_rate is None and m.directional_calls == 0


def test_spearman_matches_pandas_with_ties_and_nans():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, 300).astype(float)  # many ties
    y = x + rng.normal(0, 3, 300)
    x[::17], y[::23] = np.nan, np.inf
    ok = np.isfinite(x) & np.isfinite(y)
    expected = pd.Series(x[ok]).corr(pd.Series(y[ok]), method="spearman")
    assert spearman(x, y) == pytest.approx(expected, abs=1e-12)
    assert spearman(np.array([1.0, 2.0]), np.array([1.0, 2.0])) is None  # too few rows
    assert spearman(np.ones(10), np.arange(10.0)) is None


def test_verdict_needs_lower_log_loss_higher_f1_and_direction_skill():
    good, bad = score(Y, confident(PRED, 0.7), FWD), score(Y, confident(np.full(8, HOLD)), FWD)
    assert verdict(good, {"majority": bad, "momentum": bad}, 3).beats_baselines
    for blind in ({"ic": -0.02}, {"hit_rate": 0.499}, {"ic": None}):  # a volatility forecaster, not a direction one
        assert not verdict(good.model_copy(update=blind), {"majority": bad}, 3).beats_baselines
    steered = bad.model_copy(update={"ic": (good.ic or 0) + 0.1})
    assert not verdict(good, {"momentum": steered}, 3).beats_baselines  # a baseline with more direction skill
    worse_loss = good.model_copy(update={"log_loss": bad.log_loss + 0.1})
    result = verdict(worse_loss, {"majority": bad}, 3)
    assert not result.beats_baselines and "does NOT beat its baselines" in result.summary
    assert not verdict(good, {"majority": bad, "self": good}, 3).beats_baselines


# ----------------------------------------------------------------------------------------- calibration


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(11)
    logits = rng.normal(0, 3, (20000, 3))
    proba = softmax(logits, 2.5)
    y = (rng.random(len(logits))[:, None] > proba.cumsum(axis=1)).sum(axis=1)
    assert fit_temperature(logits, y) == pytest.approx(2.5, rel=0.06)
    assert fit_temperature(logits[:0], y[:0]) == 1.0
    assert log_loss(y, softmax(logits, 2.5)) < log_loss(y, softmax(logits, 1.0))


def test_softmax_rows_sum_to_one_even_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0], [-5.0, -5.0, -5.0]])
    for temperature in (0.05, 1.0, 20.0):
        p = softmax(logits, temperature)
        assert np.isfinite(p).all() and (p >= 0).all()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(softmax(logits)[2], 1 / 3)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(softmax(logits)[1], e / e.sum())


# ------------------------------------------------------------------------------------------- baselines


def baseline_data(x: np.ndarray, y: np.ndarray) -> TrainingData:
    n = len(x)
    X = np.column_stack([np.zeros(n), x, np.ones(n)]).astype(np.float32)
    return TrainingData(
        features=("ret_1", "ret_24h", "other"), symbols=("AAA",),
        times=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"), X=X, asset=np.zeros(n, np.int32),
        bar=np.arange(n, dtype=np.int32), y=np.asarray(y), t1=np.arange(n, dtype=np.int32) + 1,
        fwd=np.zeros(n), horizon=1,
    )


def test_majority_gives_smoothed_training_frequencies():
    y = np.array([SELL] * 2 + [HOLD] * 5 + [BUY] * 3 + [SELL] * 4)
    data = baseline_data(np.arange(len(y), dtype=float), y)
    train, rows = np.arange(10), np.arange(10, 14)
    proba = baselines.majority(data, train, rows)
    assert proba.shape == (4, 3)
    np.testing.assert_allclose(proba, np.tile([3 / 13, 6 / 13, 4 / 13], (4, 1)))  # (count + 1) / (10 + 3)


def test_momentum_bins_reproduce_the_training_shares():
    # train: x = 0..19, SELL below 5, HOLD 5..14, BUY 15..19 (shares 1/4, 1/2, 1/4); one row without x
    x = np.concatenate([np.arange(20.0), [np.nan], [-1.0, 10.0, 100.0, np.nan]])
    y = np.concatenate([[SELL] * 5 + [HOLD] * 10 + [BUY] * 5, [BUY], [HOLD] * 4])
    data = baseline_data(x, y)
    train, test = np.arange(21), np.arange(21, 25)
    assert baselines.momentum_feature(data) == "ret_24h"
    table = np.array([[6 / 8, 1 / 8, 1 / 8], [1 / 13, 11 / 13, 1 / 13], [1 / 8, 1 / 8, 6 / 8]])
    on_train = baselines.momentum(data, train, np.arange(20))
    np.testing.assert_allclose(on_train, table[y[:20]])  # each bin holds exactly its class
    proba = baselines.momentum(data, train, test)
    np.testing.assert_allclose(proba[:3], table)  # below, inside and above the training range
    np.testing.assert_allclose(proba[3], table[HOLD])  # NaN momentum: the training median's bin
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_momentum_bins_match_shares_on_noisy_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=3000)
    y = rng.choice(3, size=3000, p=[0.3, 0.5, 0.2])
    x[rng.random(3000) < 0.05] = np.nan
    data = baseline_data(x, y)
    train = np.arange(3000)
    proba = baselines.momentum(data, train, train)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    ok = np.isfinite(x)
    _, bins, counts = np.unique(proba[ok], axis=0, return_inverse=True, return_counts=True)
    assert len(counts) == 3
    shares = np.bincount(y[ok], minlength=3) / ok.sum()
    # rows per bin, ordered by x, reproduce the class shares (to a row or two: quantiles interpolate)
    order = np.argsort([np.median(x[ok][bins.ravel() == b]) for b in range(3)])
    np.testing.assert_allclose(counts[order] / ok.sum(), shares, atol=2 / ok.sum())


# ------------------------------------------------------------------------------------------------- xgboost

SMALL = XGBParams(n_estimators=40, max_depth=3, learning_rate=0.3, early_stopping_rounds=10, min_child_weight=1.0)


def learnable(rows: int = 3000, seed: int = 0) -> TrainingData:
    """One asset, three features; the class is decided by f1 alone (beyond ±0.5), f0 and f2 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3)).astype(np.float32)
    X[rng.random(rows) < 0.03, 2] = np.nan
    y = np.where(X[:, 1] > 0.5, BUY, np.where(X[:, 1] < -0.5, SELL, HOLD))
    flip = rng.random(rows) < 0.05
    y[flip] = rng.integers(0, 3, flip.sum())
    return TrainingData(
        features=("f0", "f1", "f2"), symbols=("AAA",),
        times=pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC"), X=X,
        asset=np.zeros(rows, np.int32), bar=np.arange(rows, dtype=np.int32), y=y,
        t1=np.arange(rows, dtype=np.int32) + 1, fwd=0.01 * X[:, 1] + rng.normal(0, 0.003, rows), horizon=1,
    )


def thirds(data: TrainingData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(data.y)
    return np.arange(0, n // 2), np.arange(n // 2, 2 * n // 3), np.arange(2 * n // 3, n)


@pytest.fixture(scope="module")
def xdata() -> TrainingData:
    return learnable()


@pytest.fixture(scope="module")
def fitted(xdata) -> tuple[XGBoostLearner, dict]:
    train, val, _ = thirds(xdata)
    learner = XGBoostLearner(SMALL, "cpu")
    return learner, learner.fit(xdata, train, val)


def test_xgboost_learns_the_signal(xdata, fitted):
    learner, info = fitted
    train, _, test = thirds(xdata)
    proba = learner.predict_proba(xdata, test)
    assert proba.shape == (len(test), 3) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    accuracy = float(np.mean(proba.argmax(axis=1) == xdata.y[test]))
    assert accuracy > 0.85, accuracy  # chance is about 0.38
    m = score(xdata.y[test], proba, xdata.fwd[test])
    assert m.log_loss < score(xdata.y[test], baselines.majority(xdata, train, test), xdata.fwd[test]).log_loss - 0.5
    assert 1 <= info["rounds"] <= SMALL.n_estimators and info["temperature"] > 0
    assert info["train_rows"] == len(train) and learner.features == xdata.features


def test_xgboost_importances_rank_the_informative_feature_first(xdata, fitted):
    learner, _ = fitted
    _, _, test = thirds(xdata)
    imp = learner.importances(xdata, test)
    assert list(imp) == list(xdata.features)
    assert sum(v["gain"] for v in imp.values()) == pytest.approx(1.0)
    assert all(v["gain"] >= 0 and v["shap"] >= 0 for v in imp.values())
    assert max(imp, key=lambda f: imp[f]["gain"]) == "f1" and imp["f1"]["gain"] > 0.8
    assert max(imp, key=lambda f: imp[f]["shap"]) == "f1"


def test_xgboost_save_and_load_give_the_same_probabilities(xdata, fitted, tmp_path: Path):
    learner, _ = fitted
    _, _, test = thirds(xdata)
    names = learner.save(tmp_path / "model")
    assert sorted(names) == ["xgboost.json", "xgboost.ubj"]
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(names)
    loaded = XGBoostLearner.load(tmp_path / "model")
    assert loaded.features == xdata.features and loaded.temperature == learner.temperature
    assert loaded.params == SMALL
    np.testing.assert_array_equal(loaded.predict_proba(xdata, test), learner.predict_proba(xdata, test))


def test_xgboost_is_deterministic_for_a_seed(xdata, fitted):
    learner, _ = fitted
    train, val, test = thirds(xdata)
    again = XGBoostLearner(SMALL, "cpu")
    again.fit(xdata, train, val)
    np.testing.assert_array_equal(again.predict_proba(xdata, test), learner.predict_proba(xdata, test))


def test_xgboost_fit_stops_when_cancelled(xdata):
    train, val, _ = thirds(xdata)
    calls = []

    def report(fraction: float, message: str) -> None:
        calls.append((fraction, message))
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        XGBoostLearner(SMALL, "cpu").fit(xdata, train, val, report)
    assert len(calls) == 1 and "xgboost round 1/" in calls[0][1]


# ------------------------------------------------------------------------------- training data, real set

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
TD_HORIZON = 12


@pytest.fixture(scope="module")
def fs(tmp_path_factory) -> FeatureSet:
    return offline_feature_set(tmp_path_factory.mktemp("home"), SYMBOLS, datetime(2024, 3, 1, tzinfo=UTC),
                               datetime(2024, 5, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def general(fs) -> TrainingData:
    return training_data(fs, "general", LabelSpec(horizon=TD_HORIZON))


@pytest.fixture(scope="module")
def native(fs) -> TrainingData:
    return training_data(fs, "aster_native", LabelSpec(horizon=TD_HORIZON))


def test_variants_choose_their_features(fs, general, native):
    thin = set(liquidity.columns(fs.spec))
    assert thin == {"listing_age", "history_bars", "amihud_24h", "spread_24h"}
    assert not thin & set(general.features)
    assert not any(f.startswith(("amihud_", "spread_")) for f in general.features)
    assert thin <= set(native.features)
    assert list(native.features) == list(fs.frame.columns) == feature_list(fs, "aster_native")
    assert list(general.features) == [c for c in fs.frame.columns if c not in thin]
    assert general.X.shape == (len(general.bar), len(general.features)) and general.X.dtype == np.float32


def test_rows_are_in_bar_then_asset_order_after_the_warm_up(fs, general, native):
    longest = fs.spec.bars[fs.spec.longest]
    assert longest == 720
    key = general.bar.astype(np.int64) * len(general.symbols) + general.asset
    assert (np.diff(key) > 0).all()
    assert general.bar.min() == longest  # nothing inside the longest window's warm-up ...
    times = fs.frame.index.get_level_values("time")
    after = int(np.sum(times >= fs.panel.index[longest]))
    assert len(general.bar) == after  # ... and every row after it
    np.testing.assert_array_equal(native.bar, general.bar)
    np.testing.assert_array_equal(native.asset, general.asset)
    assert general.symbols == fs.panel.symbols == tuple(f"{s}:USDT" for s in SYMBOLS)  # perpetuals
    assert general.times.equals(fs.panel.index)


def test_rows_carry_their_own_features_and_labels(fs, general):
    index = pd.MultiIndex.from_arrays([general.times[general.bar], np.asarray(general.symbols)[general.asset]])
    frame = fs.frame.copy()
    frame.index = pd.MultiIndex.from_arrays(
        [frame.index.get_level_values("time"), frame.index.get_level_values("symbol").astype(str)]
    )
    expected = frame.loc[index, list(general.features)].to_numpy(np.float32)
    np.testing.assert_array_equal(general.X, expected)
    close = pd.DataFrame(fs.panel.close, index=fs.panel.index, columns=list(fs.panel.symbols))
    fwd = np.log(close.shift(-TD_HORIZON) / close).to_numpy()[general.bar, general.asset]
    labeled = general.labeled
    np.testing.assert_allclose(general.fwd[labeled], fwd[labeled], rtol=0, atol=1e-12)
    assert ((general.y == -1) == (general.t1 == -1)).all()
    assert (general.t1[labeled] > general.bar[labeled]).all()
    assert (general.t1[labeled] <= general.bar[labeled] + TD_HORIZON).all()
    unlabeled_tail = general.bar >= len(general.times) - TD_HORIZON
    assert (general.y[unlabeled_tail] == -1).all() and unlabeled_tail.any()
    assert len(labeled) > 0.95 * len(general.y)


def test_costs_widen_the_native_barriers(general, native):
    g, n = general.class_counts(), native.class_counts()
    assert sum(g.values()) == sum(n.values())  # the same rows are labelled
    assert n["HOLD"] > g["HOLD"]  # costs turn some small moves into HOLD
    assert n["BUY"] + n["SELL"] < g["BUY"] + g["SELL"]
    np.testing.assert_array_equal(native.fwd, general.fwd)
    assert set(CLASSES) == set(g)


def test_meta_labels_keep_the_barrier_label_only_on_the_primary_side():
    from mcp_trader.models.data import meta_labels, primary_side

    y = np.array([[BUY], [SELL], [BUY], [SELL], [HOLD], [-1]], dtype=np.int8)
    side = np.array([[1.0], [-1.0], [-1.0], [1.0], [1.0], [1.0]])
    assert meta_labels(y, side)[:, 0].tolist() == [BUY, SELL, HOLD, HOLD, HOLD, -1]
    close = np.array([[100.0], [101.0], [99.0], [98.0], [103.0]])
    assert primary_side(close, 2)[:, 0].tolist() == [0.0, 0.0, -1.0, -1.0, 1.0]  # known at the bar, from the past
