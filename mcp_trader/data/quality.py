"""Quality checks on a candle frame: report everything, repair only what is safe."""

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.timefmt import to_ms

SPIKE_MADS = 15.0  # a bar's log return this many robust deviations from the median
ZERO_RUN_BARS = 3


class Gap(BaseModel):
    start: str = Field(description="Open time of the first missing bar (UTC).")
    end: str = Field(description="Open time of the last missing bar (UTC).")
    bars: int


class Spike(BaseModel):
    time: str
    log_return: float


class QualityReport(BaseModel):
    rows: int
    expected_rows: int = Field(description="Bars on the timeframe's grid from first to last row.")
    gap_count: int = 0
    missing_bars: int = 0
    largest_gaps: list[Gap] = []
    duplicates_removed: int = 0
    ohlc_repaired: int = Field(0, description="Bars whose high/low were widened to hold open/close.")
    non_positive_removed: int = 0
    zero_volume_bars: int = 0
    zero_volume_runs: int = Field(0, description=f"Runs of at least {ZERO_RUN_BARS} zero-volume bars.")
    spikes: list[Spike] = []
    repairs: list[str] = []

    @property
    def issues(self) -> int:
        return (
            self.gap_count + self.duplicates_removed + self.ohlc_repaired + self.non_positive_removed
            + self.zero_volume_runs + len(self.spikes)
        )

    def summary(self) -> str:
        if not self.issues and not self.zero_volume_bars:
            return "clean"
        parts = [
            f"{self.gap_count} gaps ({self.missing_bars} bars missing)" if self.gap_count else "",
            f"{self.duplicates_removed} duplicates removed" if self.duplicates_removed else "",
            f"{self.ohlc_repaired} OHLC repaired" if self.ohlc_repaired else "",
            f"{self.non_positive_removed} non-positive rows removed" if self.non_positive_removed else "",
            f"{self.zero_volume_bars} zero-volume bars" if self.zero_volume_bars else "",
            f"{len(self.spikes)} spikes" if self.spikes else "",
        ]
        return ", ".join(p for p in parts if p)


def check(frame: pd.DataFrame, timeframe: str) -> tuple[pd.DataFrame, QualityReport]:
    """Repair duplicates, inconsistent high/low and non-positive prices; report the rest."""
    repairs: list[str] = []
    frame, duplicates = _drop_duplicates(frame)
    if duplicates:
        repairs.append(f"removed {duplicates} duplicate timestamps, keeping the latest fetch")
    prices = frame[["open", "high", "low", "close"]]
    bad = (prices <= 0).any(axis=1).to_numpy() | ~np.isfinite(prices.to_numpy()).all(axis=1)
    if bad.any():
        frame = frame[~bad]
        repairs.append(f"removed {int(bad.sum())} rows with non-positive or missing prices (left as gaps)")
    frame, widened = _widen_high_low(frame)
    if widened:
        repairs.append(f"widened high/low of {widened} bars to contain their open and close")
    gaps = _gaps(frame, timeframe)
    zero = frame["volume"].to_numpy() == 0
    report = QualityReport(
        rows=len(frame),
        expected_rows=_expected_rows(frame, timeframe),
        gap_count=len(gaps),
        missing_bars=sum(g.bars for g in gaps),
        largest_gaps=sorted(gaps, key=lambda g: -g.bars)[:5],
        duplicates_removed=duplicates,
        ohlc_repaired=widened,
        non_positive_removed=int(bad.sum()),
        zero_volume_bars=int(zero.sum()),
        zero_volume_runs=_runs(zero, ZERO_RUN_BARS),
        spikes=_spikes(frame),
        repairs=repairs,
    )
    return frame, report


def _drop_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    duplicated = frame.index.duplicated(keep="last")
    return frame[~duplicated].sort_index(), int(duplicated.sum())


def _widen_high_low(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    top, bottom = np.maximum.reduce([o, h, lo, c]), np.minimum.reduce([o, h, lo, c])
    wrong = (h != top) | (lo != bottom)
    if not wrong.any():
        return frame, 0
    frame = frame.copy()
    frame["high"], frame["low"] = top, bottom
    return frame, int(wrong.sum())


def _expected_rows(frame: pd.DataFrame, timeframe: str) -> int:
    if frame.empty:
        return 0
    ms = to_ms(frame.index)
    return int((ms[-1] - ms[0]) // timeframe_ms(timeframe)) + 1


def _gaps(frame: pd.DataFrame, timeframe: str) -> list[Gap]:
    step = timeframe_ms(timeframe)
    ms = to_ms(frame.index)
    jumps = np.flatnonzero(np.diff(ms) > step)
    fmt = "%Y-%m-%dT%H:%MZ"
    return [
        Gap(
            start=pd.Timestamp(ms[i] + step, unit="ms").strftime(fmt),
            end=pd.Timestamp(ms[i + 1] - step, unit="ms").strftime(fmt),
            bars=int((ms[i + 1] - ms[i]) // step - 1),
        )
        for i in jumps
    ]


def _runs(mask: np.ndarray, min_length: int) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int((lengths >= min_length).sum())


def _spikes(frame: pd.DataFrame, limit: int = 10) -> list[Spike]:
    close = frame["close"].to_numpy()
    if len(close) < 30:
        return []
    returns = np.diff(np.log(close))
    median = np.median(returns)
    mad = np.median(np.abs(returns - median)) * 1.4826
    if mad == 0:
        return []
    flagged = np.flatnonzero(np.abs(returns - median) > SPIKE_MADS * mad)
    worst = flagged[np.argsort(-np.abs(returns[flagged]))][:limit]
    return [
        Spike(time=frame.index[i + 1].strftime("%Y-%m-%dT%H:%MZ"), log_return=round(float(returns[i]), 6))
        for i in sorted(worst)
    ]
