"""Causality: the feature row at time t depends only on candles with open time ≤ t.

For several cut-off times t, every candle after t is either perturbed (random multiplicative noise on
all of open, high, low, close and volume, for every asset) or dropped; the features are recomputed
and every column's rows at or before t must be bit-identical to those computed on the original data.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from mcp_trader.data.sources.sample import load
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

Compute = Callable[[dict[str, pd.DataFrame]], pd.DataFrame]


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """3000 real hourly candles (2021-03 to 2021-07, with the sample's own short gaps) of five assets."""
    out = {f"{a}/USDT": load(a).iloc[2000:5000] for a in ("BTC", "ETH", "SOL", "DOGE", "XRP")}
    out["SOL/USDT"] = out["SOL/USDT"].iloc[LATE_START:]
    doge = out["DOGE/USDT"]
    out["DOGE/USDT"] = doge.drop(doge.index[GAP])
    return out


def features(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return builder.build(align(frames, "1h"), SPEC, REFERENCE).frame


def leaky(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The features plus one that looks ahead: the next bar's close."""
    panel = align(frames, "1h")
    table = builder.build(panel, SPEC, REFERENCE).frame.copy()
    next_close = np.full(panel.shape, np.nan)
    next_close[:-1] = panel.close[1:]
    table["next_close"] = next_close[panel.present]
    return table


def perturb_after(frames: dict[str, pd.DataFrame], t: pd.Timestamp, rng: np.random.Generator) -> dict:
    """Every candle after t scaled by random noise; high and low still bound open and close."""
    out = {}
    for symbol, frame in frames.items():
        frame = frame.copy()
        after = frame.index > t
        n = int(after.sum())
        noise = {c: np.exp(rng.normal(0.0, 0.05, n)) for c in ("open", "high", "low", "close", "volume")}
        open_, close = frame.loc[after, "open"] * noise["open"], frame.loc[after, "close"] * noise["close"]
        frame.loc[after, "open"], frame.loc[after, "close"] = open_, close
        frame.loc[after, "high"] = np.maximum(frame.loc[after, "high"] * noise["high"], np.maximum(open_, close))
        frame.loc[after, "low"] = np.minimum(frame.loc[after, "low"] * noise["low"], np.minimum(open_, close))
        frame.loc[after, "volume"] *= noise["volume"]
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        out[symbol] = frame
    return out


def truncate_after(frames: dict[str, pd.DataFrame], t: pd.Timestamp) -> dict:
    return {symbol: frame[frame.index <= t] for symbol, frame in frames.items()}


def up_to(table: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    return table[table.index.get_level_values("time") <= t]


def non_causal_columns(compute: Compute, frames: dict[str, pd.DataFrame], cutoffs: list[pd.Timestamp]) -> dict:
    """{(cut-off, how the future was changed): columns whose rows ≤ t changed}; empty when causal."""
    rng = np.random.default_rng(0)
    original = compute(frames)
    found = {}
    for t in cutoffs:
        before = up_to(original, t)
        assert len(before), t
        for how, changed in (("perturbed", perturb_after(frames, t, rng)), ("truncated", truncate_after(frames, t))):
            after = compute(changed)
            assert after.index.max()[0] <= t if how == "truncated" else len(after) == len(original)
            now = up_to(after, t)
            assert now.index.equals(before.index), (t, how)  # the same (time, symbol) rows
            assert list(now.columns) == list(before.columns)
            bad = [
                c for c in before.columns
                if not np.array_equal(before[c].to_numpy(), now[c].to_numpy(), equal_nan=True)
            ]
            if bad:
                found[(t.isoformat(), how)] = bad
    return found


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
