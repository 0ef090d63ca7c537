"""The deflated Sharpe ratio, by hand: the expected best of N null Sharpes, and the probability of skill."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from mcp_trader.optimize.deflated import EULER_GAMMA, deflated_sharpe, expected_max_sharpe, moments

PHI = NormalDist()


def test_the_expected_maximum_of_null_sharpes_follows_the_formula():
    sharpes = [0.01, -0.02, 0.03, 0.0, 0.015]
    spread = np.std(sharpes, ddof=1)
    n = 100
    by_hand = spread * ((1 - EULER_GAMMA) * PHI.inv_cdf(1 - 1 / n) + EULER_GAMMA * PHI.inv_cdf(1 - 1 / (n * math.e)))
    assert expected_max_sharpe(sharpes, n) == pytest.approx(by_hand, rel=1e-12)
    assert expected_max_sharpe(sharpes, 1) == 0.0  # one trial: nothing to deflate


def test_one_trial_gives_the_probabilistic_sharpe_ratio():
    best, bars, skew, kurt = 0.05, 1000, -0.5, 6.0
    d = deflated_sharpe(best, [best], 1, bars, skew, kurt)
    z = best * math.sqrt(bars - 1) / math.sqrt(1 - skew * best + (kurt - 1) / 4 * best**2)
    assert d.deflated_sharpe == pytest.approx(PHI.cdf(z), rel=1e-12)
    assert d.p_fluke == pytest.approx(1 - PHI.cdf(z), rel=1e-12)
    assert d.significant is (PHI.cdf(z) >= 0.95)


def test_more_trials_deflate_the_same_best_sharpe_more():
    rng = np.random.default_rng(0)
    sharpes = list(rng.normal(0, 0.02, 50))
    values = [deflated_sharpe(0.04, sharpes, n, 2000, 0.0, 3.0).deflated_sharpe for n in (2, 10, 100, 1000)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


def test_luck_alone_is_not_significant():
    """The best of 200 strategies that are pure noise: high raw Sharpe, yet the deflated figure says fluke."""
    rng = np.random.default_rng(1)
    returns = rng.normal(0, 0.01, (200, 2000))
    stats = [moments(r) for r in returns]
    sharpes = [s[0] for s in stats]
    best = int(np.argmax(sharpes))
    raw = sharpes[best] * math.sqrt(8766)
    d = deflated_sharpe(sharpes[best], sharpes, 200, 2000, stats[best][1], stats[best][2])
    assert raw > 1.5  # impressive annualised, by chance
    assert not d.significant and d.p_fluke > 0.3


def test_moments_of_a_known_series():
    returns = np.array([0.01, -0.01, 0.02, 0.0])
    sharpe, skew, kurt = moments(returns)
    assert sharpe == pytest.approx(returns.mean() / returns.std(), rel=1e-12)
    z = (returns - returns.mean()) / returns.std()
    assert skew == pytest.approx(np.mean(z**3)) and kurt == pytest.approx(np.mean(z**4))
    assert moments(np.zeros(5)) == (0.0, 0.0, 3.0)
