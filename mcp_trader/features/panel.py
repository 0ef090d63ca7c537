"""Several assets' candles aligned on one time grid, with gaps left as gaps (never forward-filled)."""

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from mcp_trader.data.candles import COLUMNS
from mcp_trader.data.timeframes import timeframe_ms


@dataclass(frozen=True)
class Panel:
    """OHLCV arrays of shape (bars, assets) on a regular grid; NaN where an asset has no candle."""

    symbols: tuple[str, ...]
    timeframe: str
    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    @cached_property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.close)

    def column(self, symbol: str) -> int:
        return self.symbols.index(symbol)

    def content_hash(self) -> str:
        digest = hashlib.sha256(repr((self.symbols, self.timeframe)).encode())
        digest.update(self.index.as_unit("ms").asi8.tobytes())
        for name in COLUMNS:
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return digest.hexdigest()


def align(frames: dict[str, pd.DataFrame], timeframe: str) -> Panel:
    """Put each asset's candles on the grid from the earliest first bar to the latest last bar."""
    step = pd.Timedelta(milliseconds=timeframe_ms(timeframe))
    starts = [f.index[0] for f in frames.values() if len(f)]
    ends = [f.index[-1] for f in frames.values() if len(f)]
    if not starts:
        grid = pd.DatetimeIndex([], tz="UTC", name="time").as_unit("ms")
    else:
        grid = pd.date_range(min(starts), max(ends), freq=step, name="time").as_unit("ms")
    arrays = {name: np.full((len(grid), len(frames)), np.nan) for name in COLUMNS}
    for j, frame in enumerate(frames.values()):
        rows = grid.get_indexer(frame.index)
        keep = rows >= 0  # candles off the grid (misaligned open times) are not guessed into place
        for name in COLUMNS:
            arrays[name][rows[keep], j] = frame[name].to_numpy("float64")[keep]
    return Panel(symbols=tuple(frames), timeframe=timeframe, index=grid, **arrays)


def segments(present: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs of consecutive True values in a 1-d mask."""
    edges = np.diff(np.concatenate(([0], present.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))
