"""The model's view of a feature set: a feature matrix with labels, one row per (bar, asset) with a candle.

The general variant learns from the technical and confluence features with volatility-scaled
barriers. The Aster-native variant adds the new/thin-asset features (listing age, history,
Amihud illiquidity, spread) and widens both barriers by what a round trip costs on the venue
(twice the taker fee plus the estimated spread), so that a move which would not pay its costs
is labelled HOLD.

Three targets. `barrier` (the default): the triple-barrier label itself, BUY / HOLD / SELL by the barrier touched
first. `meta` (meta-labelling, López de Prado): a primary rule gives each row its side — the sign of the trailing
horizon's return (time-series momentum), known at the bar — and the label says whether taking that side would
have paid: BUY (SELL) where the primary side is long (short) and the upper (lower) barrier is touched first, HOLD
otherwise. The model then learns when to take the primary's trade, never to take the other side. `return`: the
forward log return over the horizon in units of the barrier width, clipped to ±1 (`z`), learnt by regression; the
triple-barrier class stays the row's label for counting and purging (its decision bar bounds the row's overlap).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mcp_trader.errors import InputError
from mcp_trader.features import liquidity
from mcp_trader.features.dataset import FeatureSet
from mcp_trader.features.indicators import log_returns
from mcp_trader.features.rolling import rolling_mean_std
from mcp_trader.models.base import BUY, CLASSES, HOLD, SELL, Variant
from mcp_trader.models.labels import triple_barrier

ASTER_TAKER_FEE = 0.00035  # Aster perpetuals, taker, per side


Target = Literal["barrier", "meta", "return"]


class LabelSpec(BaseModel):
    target: Target = Field("barrier", description="The triple-barrier label, meta-labels on a momentum primary side, "
                                                  "or the forward return (regression).")
    horizon: int = Field(24, ge=1, le=1000, description="Bars until the time limit.")
    barrier: float = Field(1.0, gt=0, le=10, description="Barrier width in units of σ × √horizon.")
    vol_window: int | None = Field(None, ge=3, description="Bars of the σ estimate; default the shortest window.")


@dataclass(frozen=True)
class TrainingData:
    """Rows in time order (bar, then asset). `y` is -1 and `t1` -1 where a row has no label."""

    features: tuple[str, ...]
    symbols: tuple[str, ...]
    times: pd.DatetimeIndex  # the panel's grid; `bar` indexes it
    X: np.ndarray  # (rows, features) float32, NaN where a feature is not yet defined
    asset: np.ndarray
    bar: np.ndarray
    y: np.ndarray
    t1: np.ndarray
    fwd: np.ndarray  # forward log return over the horizon, for IC and the LSTM's regression head
    horizon: int
    width: np.ndarray | None = None  # barrier × σ × √horizon per row (before costs): the implied move's unit
    target: Target = "barrier"

    @cached_property
    def labeled(self) -> np.ndarray:
        return np.flatnonzero(self.y >= 0)

    @cached_property
    def cube(self) -> np.ndarray:
        """Features as (assets, bars, features) float32, NaN where an asset has no candle: sequence input."""
        out = np.full((len(self.symbols), len(self.times), len(self.features)), np.nan, np.float32)
        out[self.asset, self.bar] = self.X
        return out

    @cached_property
    def z(self) -> np.ndarray:
        """The regression target: forward log return / barrier width, clipped to ±1; NaN where either is unknown."""
        if self.width is None:
            return np.full(len(self.y), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.clip(self.fwd / np.where(self.width > 0, self.width, np.nan), -1.0, 1.0)

    def class_counts(self, rows: np.ndarray | None = None) -> dict[str, int]:
        y = self.y[self.labeled if rows is None else rows]
        counts = np.bincount(y[y >= 0], minlength=len(CLASSES))
        return dict(zip(CLASSES, counts.tolist(), strict=True))


def feature_list(fs: FeatureSet, variant: Variant) -> list[str]:
    columns = list(fs.frame.columns)
    if variant == "aster_native":
        return columns
    thin = set(liquidity.columns(fs.spec))
    return [c for c in columns if c not in thin]


def training_data(fs: FeatureSet, variant: Variant, labels: LabelSpec) -> TrainingData:
    """Features from the stored set, labels from its candles; rows inside the longest window's warm-up are dropped."""
    panel, spec = fs.panel, fs.spec
    features = feature_list(fs, variant)
    frame = fs.frame
    times = frame.index.get_level_values("time")
    bar = panel.index.get_indexer(times).astype(np.int32)
    asset = pd.Index(panel.symbols).get_indexer(frame.index.get_level_values("symbol")).astype(np.int32)
    keep = bar >= spec.bars[spec.longest]
    order = np.lexsort((asset[keep], bar[keep]))
    rows = np.flatnonzero(keep)[order]
    bar, asset = bar[rows], asset[rows]

    vol_window = labels.vol_window or spec.bars[spec.shortest]
    _, vol = rolling_mean_std(log_returns(panel), vol_window)
    cost = _costs(fs, frame, bar, asset, rows) if variant == "aster_native" else 0.0
    lab = triple_barrier(panel.close, panel.high, panel.low, vol, labels.horizon, labels.barrier, cost)
    y = lab.y if labels.target != "meta" else meta_labels(lab.y, primary_side(panel.close, labels.horizon))
    return TrainingData(
        features=tuple(features), symbols=panel.symbols, times=panel.index,
        X=frame[features].to_numpy(np.float32)[rows], asset=asset, bar=bar,
        y=y[bar, asset], t1=lab.t1[bar, asset], fwd=lab.fwd[bar, asset], horizon=labels.horizon,
        width=labels.barrier * vol[bar, asset] * np.sqrt(labels.horizon), target=labels.target,
    )


def primary_side(close: np.ndarray, horizon: int) -> np.ndarray:
    """+1 / −1 / 0: the sign of the return over the `horizon` bars up to each bar (0 where unknown)."""
    side = np.zeros(close.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        side[horizon:] = np.sign(np.log(close[horizon:] / close[:-horizon]))
    return np.nan_to_num(side)


def meta_labels(y: np.ndarray, side: np.ndarray) -> np.ndarray:
    """The barrier label kept where it agrees with the primary side, HOLD where it does not; unlabelled stays −1."""
    taken = ((side > 0) & (y == BUY)) | ((side < 0) & (y == SELL))
    return np.where(y < 0, y, np.where(taken, y, HOLD)).astype(y.dtype)


def _costs(fs: FeatureSet, frame: pd.DataFrame, bar: np.ndarray, asset: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Round-trip cost in log return per (bar, asset): two taker fees plus the spread known at the bar."""
    spread = np.zeros(fs.panel.shape)
    values = frame[f"spread_{fs.spec.shortest}"].to_numpy(np.float64)[rows]
    spread[bar, asset] = np.nan_to_num(values, nan=0.0)
    return 2 * ASTER_TAKER_FEE + spread


def check_features(trained: Sequence[str], given: Sequence[str], whose: str, field: str = "model_id",
                   accepted: str = "a model trained with this release") -> None:
    """Raise InputError unless `given` are the feature columns `whose` was trained on, in the same order."""
    if list(given) == list(trained):
        return
    missing = [c for c in trained if c not in given]
    extra = [c for c in given if c not in trained]
    found = [f"{name} {', '.join(cols)}" for name, cols in (("missing", missing), ("extra", extra)) if cols]
    raise InputError(field, f"{whose} was trained on other feature columns than these data have: "
                     f"{'; '.join(found) or 'the same columns in another order'}", accepted)
