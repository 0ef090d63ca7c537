"""The causality check shared by tests: change or drop every candle after t, recompute, compare rows ≤ t.

A computation is causal when its rows at or before t are bit-identical whether the candles after t
are the original ones, randomly perturbed ones, or gone. `non_causal_columns` runs that check for
any `compute(frames) -> table` whose rows are indexed by (time, symbol).
"""

from collections.abc import Callable

import numpy as np
import pandas as pd

from mcp_trader.data.sources.sample import load
from mcp_trader.features.panel import Panel

Compute = Callable[[dict[str, pd.DataFrame]], pd.DataFrame]


def sample_frames(
    assets: tuple[str, ...] = ("BTC", "ETH", "SOL", "DOGE", "XRP"), rows: slice = slice(2000, 5000),
    late: dict[str, int] | None = None, gaps: dict[str, slice] | None = None,
) -> dict[str, pd.DataFrame]:
    """Real hourly candles of the bundled sample, `rows` of each asset; `late` assets lose their first
    candles (they list later) and `gaps` drop a stretch of an asset's candles."""
    out = {f"{a}/USDT": load(a).iloc[rows] for a in assets}
    for asset, start in (late or {}).items():
        out[f"{asset}/USDT"] = out[f"{asset}/USDT"].iloc[start:]
    for asset, gap in (gaps or {}).items():
        frame = out[f"{asset}/USDT"]
        out[f"{asset}/USDT"] = frame.drop(frame.index[gap])
    return out


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


def next_bar(panel: Panel, values: np.ndarray) -> np.ndarray:
    """A (bars, assets) array moved one bar back in time: row t holds bar t+1's value. It peeks ahead."""
    out = np.full(panel.shape, np.nan)
    out[:-1] = values[1:]
    return out


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
