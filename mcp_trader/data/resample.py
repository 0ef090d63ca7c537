"""Coarser bars from finer ones, keeping only bars whose span has ended."""

import pandas as pd

from mcp_trader.data.candles import empty
from mcp_trader.data.timeframes import pandas_freq, timeframe_ms

_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def resample(frame: pd.DataFrame, source_tf: str, target_tf: str) -> tuple[pd.DataFrame, int]:
    """Aggregate to `target_tf`; returns the bars and how many were built from a partial set.

    A trailing bar whose span extends past the last source bar is dropped (it has not closed).
    Bars with no source bars at all stay absent: a gap is never filled.
    """
    if frame.empty:
        return empty(), 0
    grouped = frame.resample(pandas_freq(target_tf), label="left", closed="left", origin="epoch")
    bars = grouped.agg(_AGG)
    counts = grouped["close"].count()
    bars, counts = bars[counts > 0], counts[counts > 0]
    per_bar = timeframe_ms(target_tf) // timeframe_ms(source_tf)
    last_source_end = frame.index[-1] + pd.Timedelta(milliseconds=timeframe_ms(source_tf))
    closed = bars.index + pd.Timedelta(milliseconds=timeframe_ms(target_tf)) <= last_source_end
    bars, counts = bars[closed], counts[closed]
    bars.index = bars.index.as_unit("ms").rename("time")
    return bars, int((counts < per_bar).sum())
