"""The intervals of a backtest's figures, against what they claim: the Sharpe's standard error against the spread of
Sharpe ratios over many simulated markets (where Lo's normal formula is wrong and Mertens' is right), bootstrap
intervals against their coverage of a known true Sharpe, the block length against dependence in the returns."""

import math

import numpy as np
import pytest

from mcp_trader.backtest.intervals import block_length, intervals, sharpe_standard_error
from mcp_trader.backtest.params import Bootstrap

PER_YEAR = 8766.0


def test_the_standard_error_is_lo_s_under_normal_returns():
    rng = np.random.default_rng(1)
    bars, sharpe = 500, 0.1
    sharpes = [(r.mean() / r.std()) for r in rng.normal(sharpe, 1.0, size=(4000, bars))]
    lo = math.sqrt((1 + sharpe**2 / 2) / bars)  # Lo (2002), iid normal
    errors = [sharpe_standard_error(r, 1.0) for r in rng.normal(sharpe, 1.0, size=(50, bars))]
    assert np.std(sharpes) == pytest.approx(lo, rel=0.06)
    assert np.mean(errors) == pytest.approx(lo, rel=0.03)


def test_the_standard_error_follows_skewness_and_fat_tails():
    """Shifted exponential returns: skewness 2, kurtosis 9. Mertens' (2002) variance (1 + SR²/2 − 2·SR + 6/4·SR²)/T
    at SR = 0.3 is about half of Lo's normal (1 + SR²/2)/T, and the simulated spread agrees with Mertens."""
    rng = np.random.default_rng(2)
    bars, mean = 400, 0.3
    draws = rng.exponential(1.0, size=(4000, bars)) - 1.0 + mean
    spread = float(np.std([r.mean() / r.std() for r in draws]))
    mertens = math.sqrt((1 + mean**2 / 2 - 2 * mean + 6 / 4 * mean**2) / bars)
    lo = math.sqrt((1 + mean**2 / 2) / bars)
    estimated = float(np.mean([sharpe_standard_error(r, 1.0) for r in draws[:100]]))
    assert spread == pytest.approx(mertens, rel=0.08) and abs(spread - lo) > 0.2 * lo
    assert estimated == pytest.approx(mertens, rel=0.1)
    assert sharpe_standard_error(draws[0], PER_YEAR) == pytest.approx(sharpe_standard_error(draws[0], 1.0)
                                                                       * math.sqrt(PER_YEAR))


def test_the_sharpe_interval_covers_the_true_sharpe_about_95_times_in_100():
    rng = np.random.default_rng(3)
    true_annual = 1.5
    per_bar = true_annual / math.sqrt(PER_YEAR)
    settings = Bootstrap(samples=300, seed=11)
    covered = 0
    for _ in range(100):
        found = intervals(rng.normal(per_bar * 0.01, 0.01, 4000), PER_YEAR, settings).sharpe
        covered += found.low <= true_annual <= found.high
    assert 88 <= covered <= 100


def test_dependent_returns_get_longer_blocks_and_wider_intervals():
    rng = np.random.default_rng(4)
    iid = rng.normal(0.0002, 0.01, 6000)
    regime = np.repeat(rng.choice([0.4, 2.5], size=60), 100)  # volatility clusters of 100 bars
    trend = np.repeat(rng.normal(0, 0.004, 120), 50)  # drifts that persist for 50 bars
    clustered = rng.normal(0.0002, 0.01, 6000) * regime + trend
    assert block_length(iid) < 3 < 10 < block_length(clustered)
    narrow = intervals(clustered, PER_YEAR, Bootstrap(samples=400, block_bars=1))
    wide = intervals(clustered, PER_YEAR, Bootstrap(samples=400))
    assert wide.sharpe.high - wide.sharpe.low > 1.5 * (narrow.sharpe.high - narrow.sharpe.low)


def test_a_seed_gives_the_same_intervals_and_another_seed_others():
    returns = np.random.default_rng(5).normal(0.0003, 0.01, 3000)
    first, again = (intervals(returns, PER_YEAR, Bootstrap(samples=200, seed=1)) for _ in range(2))
    other = intervals(returns, PER_YEAR, Bootstrap(samples=200, seed=2))
    assert first == again and first.sharpe != other.sharpe
    assert first.max_drawdown.low > 0 and first.annual_return.low < first.annual_return.high


def test_a_flat_curve_has_no_intervals():
    flat = intervals(np.zeros(500), PER_YEAR, Bootstrap())
    assert flat.sharpe is None and flat.annual_return is None and flat.sharpe_standard_error is None
    assert intervals(np.full(10, 0.01), PER_YEAR, Bootstrap()).sharpe is None  # too short to say anything
