"""Single-asset indicators: TA-Lib's where TA-Lib has them, gap-aware where the window is long.

TA-Lib carries state from bar to bar, so a gap would either poison every later value (NaN) or, if
prices were forward-filled, invent flat bars. RSI, MACD, Bollinger Bands and NATR (warm-ups of 14 to
33 bars) are therefore computed by TA-Lib on each run of consecutive candles, with its own warm-up.
Returns, realised volatility and volume statistics over the long windows (up to 30 days) would
lose a month after every one-bar gap that way, so they use the gap-aware rolling statistics of
rolling.py; on gap-free data they equal TA-Lib's ROCP, STDDEV and SMA (tested).

Price-scaled outputs (MACD) are divided by the close so that assets are comparable.
"""

import numpy as np
import talib

from mcp_trader.features.panel import Panel, segments
from mcp_trader.features.rolling import rolling_mean, rolling_mean_std
from mcp_trader.features.spec import FeatureSpec

RSI_PERIOD, ATR_PERIOD = 14, 14
ATR_BARS = 20 * ATR_PERIOD  # bars that settle it: Wilder smoothing forgets its start, (13/14)^266 < 1e-8
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BB_PERIOD, BB_DEV = 20, 2.0
TALIB_COLUMNS = ("rsi_14", "macd_pct", "macd_signal_pct", "macd_hist_pct", "bb_pctb", "bb_width", "natr_14")


def columns(spec: FeatureSpec) -> list[str]:
    w = spec.windows
    return [
        "ret_1", *(f"ret_{x}" for x in w), *(f"rvol_{x}" for x in w), *TALIB_COLUMNS,
        *(f"volume_z_{x}" for x in w), "log_dollar_volume",
    ]


def compute(panel: Panel, spec: FeatureSpec, log_ret: np.ndarray) -> dict[str, np.ndarray]:
    """Every single-asset column as a (bars, assets) array, NaN where there is no candle."""
    out = {"ret_1": _change(panel.close, 1)}
    out |= {f"ret_{w}": _change(panel.close, n) for w, n in spec.bars.items()}
    out |= {f"rvol_{w}": rolling_mean_std(log_ret, n)[1] for w, n in spec.bars.items()}
    out |= _talib_on_runs(panel)
    log_volume = np.where(panel.present, np.log1p(panel.volume), np.nan)
    for w, n in spec.bars.items():
        mean, std = rolling_mean_std(log_volume, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"volume_z_{w}"] = np.where(std > 0, (log_volume - mean) / std, np.nan)
    out["log_dollar_volume"] = np.log1p(rolling_mean(panel.close * panel.volume, spec.bars[spec.shortest]))
    return {name: out[name] for name in columns(spec)}


def log_returns(panel: Panel) -> np.ndarray:
    """Bar-to-bar log returns; NaN on the first bar after a gap rather than a return across it."""
    out = np.full(panel.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.log(panel.close[1:] / panel.close[:-1])
    return out


def _change(close: np.ndarray, bars: int) -> np.ndarray:
    """(close − close n grid bars earlier) / that close, as TA-Lib's ROCP; NaN when either bar is missing."""
    out = np.full(close.shape, np.nan)
    if bars < len(close):
        out[bars:] = (close[bars:] - close[:-bars]) / close[:-bars]
    return out


def _talib_on_runs(panel: Panel) -> dict[str, np.ndarray]:
    out = {name: np.full(panel.shape, np.nan) for name in TALIB_COLUMNS}
    for j in range(panel.shape[1]):
        for a, b in segments(panel.present[:, j]):
            run = (panel.high[a:b, j], panel.low[a:b, j], panel.close[a:b, j])
            for name, values in zip(TALIB_COLUMNS, _talib_run(*run), strict=True):
                out[name][a:b, j] = values
    return out


def _talib_run(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
    macd, signal, hist = talib.MACD(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    upper, middle, lower = talib.BBANDS(close, BB_PERIOD, BB_DEV, BB_DEV)
    band = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        pctb = np.where(band > 0, (close - lower) / band, np.nan)
        return (
            talib.RSI(close, RSI_PERIOD), macd / close, signal / close, hist / close, pctb, band / middle,
            talib.NATR(high, low, close, ATR_PERIOD),
        )


def atr(panel: Panel) -> np.ndarray:
    """atr_series on each gap-free run of candles, NaN during each run's warm-up."""
    out = np.full(panel.shape, np.nan)
    for j in range(panel.shape[1]):
        for a, b in segments(panel.present[:, j]):
            out[a:b, j] = atr_series(panel.high[a:b, j], panel.low[a:b, j], panel.close[a:b, j])
    return out


def atr_series(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The one ATR: TA-Lib's ATR(14) (Wilder), in price units, NaN during its warm-up."""
    return talib.ATR(high, low, close, ATR_PERIOD)
