"""Causality: the feature row at time t depends only on candles with open time ≤ t.

For several cut-off times t, every candle after t is either perturbed (random multiplicative noise on
all of open, high, low, close and volume, for every asset) or dropped; the features are recomputed
and every column's rows at or before t must be bit-identical to those computed on the original data.
"""

import numpy as np
import pandas as pd
import pytest
from causality import next_bar, non_causal_columns, perturb_after, sample_frames

from mcp_trader.features import builder
from mcp_trader.features.panel import align
from mcp_trader.features.spec import make_spec

SPEC = make_spec("1h")  # 24h, 7d, 30d
REFERENCE = "BTC/USDT"
LATE_START = 400  # SOL's first candle, in bars of the panel
GAP = slice(1500, 1540)  # bars DOGE misses
CUTOFFS = (
    150,  # early: before SOL's first candle, and before any 7d or 30d window is full
    LATE_START + 30,  # SOL just listed
    1520,  # inside DOGE's gap
    1600,  # mid, just after the gap
    2000,
    2995,  # near the end
)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """3000 real hourly candles (2021-03 to 2021-07, with the sample's own short gaps) of five assets."""
    return sample_frames(late={"SOL": LATE_START}, gaps={"DOGE": GAP})


def features(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return builder.build(align(frames, "1h"), SPEC, REFERENCE).frame


def leaky(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The features plus one that looks ahead: the next bar's close."""
    panel = align(frames, "1h")
    table = builder.build(panel, SPEC, REFERENCE).frame.copy()
    table["next_close"] = next_bar(panel, panel.close)[panel.present]
    return table


def cutoff_times(frames: dict[str, pd.DataFrame]) -> list[pd.Timestamp]:
    grid = align(frames, "1h").index
    return [grid[k] for k in CUTOFFS]


def test_every_feature_is_causal(frames):
    cutoffs = cutoff_times(frames)
    doge = frames["DOGE/USDT"]
    assert not doge.index.isin([cutoffs[2]]).any()  # the cut-off inside the gap has no DOGE candle
    assert cutoffs[0] < frames["SOL/USDT"].index[0] < cutoffs[1]
    found = non_causal_columns(features, frames, cutoffs)
    assert not found, f"features that change when only candles after t change: {found}"


def test_perturbation_reaches_the_features(frames):
    """The perturbation is strong enough that rows after t do change: a causal pass is not vacuous."""
    t = cutoff_times(frames)[3]
    original = features(frames)
    changed = features(perturb_after(frames, t, np.random.default_rng(1)))
    later = original.index.get_level_values("time") > t
    unchanged = [
        c for c in original.columns
        if np.array_equal(original[c].to_numpy()[later], changed[c].to_numpy()[later], equal_nan=True)
    ]
    assert unchanged == ["listing_age", "history_bars"], unchanged  # they count candles, not prices


def test_the_check_catches_a_leaky_feature(frames):
    cutoffs = cutoff_times(frames)
    found = non_causal_columns(leaky, frames, cutoffs)
    assert set(found) == {(t.isoformat(), how) for t in cutoffs for how in ("perturbed", "truncated")}
    assert all(columns == ["next_close"] for columns in found.values()), found
