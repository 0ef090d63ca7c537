"""The feature matrix: every feature for every (time, asset) that has a candle, in a stable order.

Row t of an asset is computed only from candles with open time ≤ t (tests/test_causality.py
proves it column by column). Rows exist where the asset has a candle; bars before an asset's first
candle or inside its gaps have no row, and nothing is forward-filled across a gap.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mcp_trader.features import confluence, indicators, liquidity
from mcp_trader.features.panel import Panel
from mcp_trader.features.spec import FeatureSpec

FEATURES_VERSION = "3"  # bump when any feature's definition changes: it is part of every feature-set id


def feature_columns(spec: FeatureSpec) -> list[str]:
    return [*indicators.columns(spec), *liquidity.columns(spec), *confluence.columns(spec)]


@dataclass(frozen=True)
class FeatureTable:
    frame: pd.DataFrame  # MultiIndex (time, symbol); columns in feature_columns order
    spec: FeatureSpec
    content_hash: str


def compute_arrays(panel: Panel, spec: FeatureSpec, reference: str) -> dict[str, np.ndarray]:
    """Every feature as a (bars, assets) array; `reference` is the panel's BTC column."""
    log_ret = indicators.log_returns(panel)
    single = indicators.compute(panel, spec, log_ret)
    btc = log_ret[:, panel.column(reference)]
    arrays = {**single, **liquidity.compute(panel, spec, log_ret)}
    arrays.update(confluence.compute(single, log_ret, btc, spec))
    for w in spec.windows:  # BTC against itself is 1 by definition: no information, and it would mark BTC's rows
        arrays[f"corr_btc_{w}"][:, panel.column(reference)] = np.nan
    return {name: arrays[name] for name in feature_columns(spec)}


def build(panel: Panel, spec: FeatureSpec, reference: str) -> FeatureTable:
    """The long feature table of a panel. Confluence is measured among all the panel's assets."""
    arrays = compute_arrays(panel, spec, reference)
    flat = np.flatnonzero(panel.present)
    rows, assets = np.divmod(flat, panel.shape[1])
    values = np.empty((len(arrays), len(flat)))
    for k, array in enumerate(arrays.values()):
        np.take(array, flat, out=values[k])
    index = pd.MultiIndex.from_arrays(
        [panel.index[rows], pd.Categorical.from_codes(assets, categories=list(panel.symbols))],
        names=["time", "symbol"],
    )
    frame = pd.DataFrame(values.T, index=index, columns=list(arrays), copy=False)
    digest = hashlib.sha256(repr((list(arrays), panel.symbols)).encode())
    for part in (panel.index.as_unit("ms").asi8[rows], assets, values):
        digest.update(np.ascontiguousarray(part).data)  # the same bytes; numpy types ndarray as a buffer from 3.12 on
    return FeatureTable(frame=frame, spec=spec, content_hash=digest.hexdigest())
