"""The probability of backtest overfitting (CSCV) on worked examples: two trials that swap places between halves
(PBO 1), one that wins everywhere (PBO 0), a study of pure noise (about one half), and a real edge among noise."""

import numpy as np
import pytest

from mcp_trader.optimize.overfitting import block_moments, probability_of_overfitting


def trial(blocks: list[list[float]]) -> list[list[float]]:
    return [row for values in blocks for row in block_moments(np.asarray(values), 1)]


def test_trials_that_swap_places_between_halves_are_always_overfit():
    """Two blocks, two trials: A wins block 0 and loses block 1, B the reverse. Picking on either half picks the
    trial that is worst on the other: ω = 1/3, λ < 0 in both splits."""
    a = trial([[0.02, 0.01, 0.03], [-0.02, -0.01, -0.03]])
    b = trial([[-0.02, -0.01, -0.03], [0.02, 0.01, 0.03]])
    found = probability_of_overfitting([a, b])
    assert found.pbo == 1.0 and found.splits == 2 and found.trials == 2
    assert found.median_logit == pytest.approx(np.log((1 / 3) / (2 / 3)))
    assert found.best_loses_out_of_sample == 1.0


def test_a_trial_that_wins_everywhere_is_not_overfit():
    rng = np.random.default_rng(1)
    good = rng.normal(0.01, 0.01, 400)
    others = [rng.normal(0.0, 0.01, 400) for _ in range(9)]
    moments = [block_moments(r, 4) for r in [good, *others]]
    found = probability_of_overfitting(moments)
    assert found.pbo == 0.0 and found.splits == 6  # C(4, 2)
    assert found.median_logit == pytest.approx(np.log((10 / 11) / (1 / 11)))  # the best is ranked first out of sample


def test_picking_the_best_of_pure_noise_is_a_coin_flip():
    """One study of noise may land anywhere (its trials' luck is shared by both halves); over many it averages 1/2."""
    rng = np.random.default_rng(2)
    studies = [probability_of_overfitting([block_moments(r) for r in rng.normal(0, 0.01, size=(40, 3200))])
               for _ in range(16)]
    assert {(s.blocks, s.splits) for s in studies} == {(16, 12870)}
    assert 0.4 < np.mean([s.pbo for s in studies]) < 0.6


def test_a_real_edge_among_noise_is_found():
    rng = np.random.default_rng(3)
    noise = [rng.normal(0, 0.01, 3200) for _ in range(39)]
    edge = rng.normal(0.0015, 0.01, 3200)  # per-bar Sharpe 0.15
    found = probability_of_overfitting([block_moments(r) for r in [*noise, edge]])
    assert found.pbo < 0.05 and found.best_loses_out_of_sample < 0.05


def test_memory_stays_flat_for_many_trials():
    rng = np.random.default_rng(4)
    moments = np.array([block_moments(r) for r in rng.normal(0, 0.01, size=(600, 320))])
    assert probability_of_overfitting(moments).trials == 600


def test_fewer_than_two_trials_have_no_pbo():
    assert probability_of_overfitting([block_moments(np.ones(32) * 0.01)]) is None
