"""The candle frame: a UTC DatetimeIndex of bar open times and float OHLCV columns."""

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from mcp_trader.timefmt import to_ms

COLUMNS = ("open", "high", "low", "close", "volume")


def empty() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="time", dtype="datetime64[ms, UTC]")
    return pd.DataFrame({c: np.array([], dtype="float64") for c in COLUMNS}, index=index)


def from_rows(rows: Iterable[Sequence[float]]) -> pd.DataFrame:
    """Candles from ccxt-style rows [ms, open, high, low, close, volume]."""
    array = np.asarray(list(rows), dtype="float64").reshape(-1, 6)
    if not len(array):
        return empty()
    index = pd.to_datetime(array[:, 0].astype("int64"), unit="ms", utc=True).rename("time")
    return pd.DataFrame(array[:, 1:], index=index.as_unit("ms"), columns=list(COLUMNS))


def between(frame: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Rows whose open time lies in [start_ms, end_ms)."""
    ms = to_ms(frame.index)
    return frame[(ms >= start_ms) & (ms < end_ms)]


def merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two frames; on equal timestamps the newer fetch wins."""
    if old.empty:
        return new.sort_index()
    combined = pd.concat([old, new])
    return combined[~combined.index.duplicated(keep="last")].sort_index()


def content_hash(frame: pd.DataFrame) -> str:
    """Hash of the values alone, independent of the file format that holds them."""
    digest = hashlib.sha256(to_ms(frame.index).tobytes())
    digest.update(np.ascontiguousarray(frame[list(COLUMNS)].to_numpy("float64")).tobytes())
    return digest.hexdigest()
