"""The rows a parity check runs on: the model's own last walk-forward test block, on the very data it was built from.

The TrainingData is rebuilt from what the store already holds, with no collection: the feature table by the
model's feature-set id, and the candles it was computed from by their dataset ids, over the set's span. The
candles' hash must equal the feature set's input hash, and the feature columns the model's, so the rows are
the model's own. The test rows are those `oos_predictions.parquet` lists for the last fold.
"""

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.errors import InputError, NotFoundError
from mcp_trader.features.dataset import FeatureSet
from mcp_trader.features.models import FeatureSetRecord
from mcp_trader.features.panel import Panel, align
from mcp_trader.features.spec import make_spec
from mcp_trader.models.data import TrainingData, check_features, training_data
from mcp_trader.models.records import ModelRecord

if TYPE_CHECKING:
    from mcp_trader.home import Home

UNVALIDATED = "validate=false to export without a parity check"


@dataclass(frozen=True)
class HeldOutRows:
    data: TrainingData
    rows: np.ndarray
    fold: int
    start: pd.Timestamp
    end: pd.Timestamp


async def held_out(home: "Home", record: ModelRecord, model_folder: Path, limit: int) -> HeldOutRows:
    """Up to `limit` of the last fold's test rows, evenly spread over it, in time order."""
    store = await home.features()
    try:
        stored = await store.record(record.feature_set_id)
    except NotFoundError as error:
        raise InputError("model_id", f"model {record.id}'s feature set {record.feature_set_id} is no longer stored",
                         UNVALIDATED) from error
    frame = await asyncio.to_thread(store.table, stored.id)
    panel = await _panel(home, stored)
    if panel.content_hash() != stored.input_hash:
        raise InputError("model_id", f"the stored candles of feature set {stored.id} no longer hash to what model "
                         f"{record.id} was built from", UNVALIDATED)
    fs = FeatureSet(stored, frame, panel, make_spec(stored.timeframe, list(stored.windows)), cached=True, notes=[])
    data = await asyncio.to_thread(training_data, fs, record.variant, record.labels)
    check_features(record.features, data.features, f"model {record.id}", accepted=UNVALIDATED)
    tested = await asyncio.to_thread(pd.read_parquet, model_folder / "oos_predictions.parquet",
                                     columns=["time", "symbol", "fold"])
    fold = int(tested["fold"].max())
    last = tested[tested["fold"] == fold]
    rows = _rows_of(data, last)
    if (rows < 0).any():
        raise InputError("model_id", f"{int((rows < 0).sum())} of model {record.id}'s test rows are missing from "
                         "its rebuilt feature set", UNVALIDATED)
    rows = np.sort(rows)
    picked = rows[np.unique(np.linspace(0, len(rows) - 1, min(limit, len(rows))).round().astype(int))]
    return HeldOutRows(data, picked, fold, last["time"].min(), last["time"].max())


def _rows_of(data: TrainingData, tested: pd.DataFrame) -> np.ndarray:
    index = pd.MultiIndex.from_arrays([data.times[data.bar], np.asarray(data.symbols)[data.asset]])
    return index.get_indexer(pd.MultiIndex.from_arrays([pd.DatetimeIndex(tested["time"]), tested["symbol"]]))


async def _panel(home: "Home", stored: FeatureSetRecord) -> Panel:
    """The aligned candles of the feature set's span, read back by dataset id."""
    catalog = await home.catalog()
    start, end = pd.Timestamp(stored.start), pd.Timestamp(stored.end) + pd.Timedelta(
        milliseconds=timeframe_ms(stored.timeframe))
    frames = {}
    for i in stored.inputs:
        dataset = await catalog.dataset(i.dataset_id)
        frames[i.symbol] = await asyncio.to_thread(home.candles.read, Path(dataset.path), start, end)
    return align(dict(sorted(frames.items())), stored.timeframe)
