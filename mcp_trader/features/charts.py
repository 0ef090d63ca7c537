"""PNG charts of a feature table: the confluence heatmap and the feature distributions.

matplotlib is imported inside each function, so importing this module costs nothing, and the
figures are drawn on the Agg canvas through `matplotlib.figure.Figure`, never pyplot: no global
figure state, no GUI backend, safe to call from worker threads.
"""

import io
import math

import numpy as np
import pandas as pd

from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.features.rolling import min_count
from mcp_trader.features.spec import FeatureSpec

MAX_ANNOTATED = 16  # above this many assets the correlation cells are left without numbers
GRID_COLUMNS = 6
BINS = 40


def confluence_heatmap(frame: pd.DataFrame, spec: FeatureSpec, bars: int = 240) -> bytes:
    """Confluence score of each asset over the last `bars` grid times, beside the assets' return correlations.

    Left: confluence_score, assets × time, on a diverging scale fixed to [−1, 1] (grey: no value).
    Right: the pairwise Pearson correlation of the assets' ret_1 over the last bars of the middle
    window, at the snapshot time (the frame's last time).
    """
    if bars < 1:
        raise ValueError("bars must be at least 1")
    times = frame.index.get_level_values("time")
    if len(times) == 0:
        raise ValueError("the feature table has no rows")
    last = times.max()
    step = pd.Timedelta(milliseconds=timeframe_ms(spec.timeframe))
    grid = pd.date_range(end=last, periods=bars, freq=step)
    grid = grid[grid >= times.min()]
    scores = _wide(frame, "confluence_score", grid)
    middle = spec.windows[len(spec.windows) // 2]
    n = spec.bars[middle]
    returns = _wide(frame, "ret_1", pd.date_range(end=last, periods=n, freq=step))
    corr = returns.corr(min_periods=min_count(n))

    from matplotlib.figure import Figure

    symbols = [_label(s) for s in scores.columns]
    height = max(3.5, 0.32 * len(symbols) + 2.0)
    fig = Figure(figsize=(15, height), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[2.3, 1])

    cmap = _cmap("RdYlGn")
    image = left.imshow(scores.to_numpy().T, aspect="auto", cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    left.set_yticks(range(len(symbols)), symbols, fontsize=8)
    ticks = np.unique(np.linspace(0, len(grid) - 1, min(len(grid), 7)).round().astype(int))
    fmt = "%Y-%m-%d" if step >= pd.Timedelta(days=1) else "%m-%d %H:%M"
    left.set_xticks(ticks, [grid[i].strftime(fmt) for i in ticks], fontsize=8, rotation=30, ha="right")
    left.set_xlabel("bar open time (UTC)")
    left.set_title(f"confluence_score, last {len(grid)} bars of {spec.timeframe}", fontsize=10)
    fig.colorbar(image, ax=left, fraction=0.04, pad=0.01, label="confluence_score")

    shown = corr.to_numpy()
    matrix = right.imshow(shown, cmap=_cmap("RdBu_r"), vmin=-1, vmax=1, interpolation="nearest")
    labels = [_label(s) for s in corr.columns]
    right.set_xticks(range(len(labels)), labels, fontsize=7, rotation=60, ha="right")
    right.set_yticks(range(len(labels)), labels, fontsize=7)
    if len(labels) <= MAX_ANNOTATED:
        size = 7 if len(labels) <= 10 else 5.5
        for (i, j), value in np.ndenumerate(shown):
            if not math.isnan(value):
                right.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=size,
                           color="white" if abs(value) > 0.6 else "black")
    right.set_title(f"ret_1 correlation, last {middle} ({n} bars)", fontsize=10)
    fig.colorbar(matrix, ax=right, fraction=0.046, pad=0.02)

    fig.suptitle(f"Confluence {spec.timeframe}, snapshot {last.strftime('%Y-%m-%d %H:%M')} UTC", fontsize=12)
    return _png(fig)


def feature_distributions(frame: pd.DataFrame, columns: list[str] | None = None) -> bytes:
    """One histogram per feature column, clipped to its 1st–99th percentile; NaN rate in each title."""
    names = list(frame.columns if columns is None else columns)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the feature table: {missing}")
    if not names:
        raise ValueError("no columns to plot")

    from matplotlib.figure import Figure

    ncols = min(GRID_COLUMNS, len(names))
    nrows = math.ceil(len(names) / ncols)
    width, height = max(2.7 * ncols, 6.0), 2.1 * nrows + 0.8
    fig = Figure(figsize=(width, height), dpi=90)  # fixed margins: constrained layout is slow on 40+ axes
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.3 / height, top=1 - 0.9 / height, wspace=0.12, hspace=0.75)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        nan_rate = float(np.isnan(values).mean()) if len(values) else 1.0
        finite = values[np.isfinite(values)]
        ax.set_title(f"{name}\nNaN {nan_rate:.1%}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
        if not len(finite):
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            continue
        lo, hi = np.percentile(finite, [1, 99])
        if hi <= lo:  # (nearly) constant: a single visible bar instead of a zero-width range
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(np.clip(finite, lo, hi), bins=BINS, range=(lo, hi))
        ax.stairs(counts, edges, fill=True, color="#4C72B0")  # one artist per panel, not one patch per bin
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("Feature distributions (clipped to the 1st–99th percentile)", fontsize=11, y=1 - 0.15 / height)
    return _png(fig)


def _wide(frame: pd.DataFrame, column: str, grid: pd.DatetimeIndex) -> pd.DataFrame:
    """One column as (grid time × symbol), NaN where an asset has no row."""
    wide = frame[column].unstack("symbol")
    wide.columns = [str(c) for c in wide.columns]
    return wide.reindex(grid)


def _label(symbol: str) -> str:
    return str(symbol).split(":")[0]  # 'BTC/USDT:USDT' (a perp) reads as BTC/USDT


def _cmap(name: str):
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="#d9d9d9")  # grey where there is no value


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
