"""The feature validation report: how each feature is distributed and whether it ranks future returns.

For every feature column of a feature set it gives the NaN rate, the distribution (mean, std, min,
1st/50th/99th percentile, max, over the finite values) and the rank information coefficient (IC)
against the forward return over `horizon` bars:

    fwd[t, i] = close[t + horizon, i] / close[t, i] − 1        (NaN when either bar has no candle)

- pooled IC: Spearman correlation of feature and forward return over all (time, asset) rows that
  have both;
- cross-sectional IC: at each time with at least MIN_CROSS_SECTION assets having both, the
  Spearman correlation across assets; the report gives the mean of these ICs, how many times
  have one, and the t-statistic mean / std · √n.

Spearman is the Pearson correlation of the ranks (ties get their average rank).

The forward return looks ahead by construction. It is used here only to *evaluate* the features,
never as a feature and never written into the feature table; the features themselves stay causal
(row t uses candles up to t). Forward returns over consecutive bars overlap by horizon − 1 bars,
so the per-time ICs are autocorrelated and the t-statistic overstates significance: read it as a
ranking of features, not as a test.
"""

import functools
import math
import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mcp_trader.errors import InputError
from mcp_trader.features.dataset import FeatureSet
from mcp_trader.store.files import write_atomically

MIN_CROSS_SECTION = 3  # with two assets a rank correlation is always ±1
MIN_ROWS = 3
FILES = ("report.json", "confluence_heatmap.png", "feature_distributions.png")


class FeatureStats(BaseModel):
    name: str
    nan_rate: float = Field(description="Share of rows where the feature is NaN.")
    inf_rate: float = Field(description="Share of rows where the feature is ±inf (left out of every statistic).")
    mean: float | None
    std: float | None
    min: float | None
    p1: float | None
    p50: float | None
    p99: float | None
    max: float | None
    ic_pooled: float | None = Field(description="Spearman IC with the forward return over all (time, asset) rows.")
    ic_pooled_rows: int = Field(description="Rows with both the feature and a forward return.")
    ic_mean: float | None = Field(description="Mean of the per-time cross-sectional Spearman ICs.")
    ic_tstat: float | None = Field(description="mean / std · √n of the per-time ICs (overlapping horizons).")
    ic_times: int = Field(description="Times with a defined cross-sectional IC.")


class ValidationReport(BaseModel):
    feature_set_id: str
    timeframe: str
    windows: dict[str, int] = Field(description="Window → bars.")
    symbols: list[str]
    rows: int
    start: str | None
    end: str | None
    synthetic: bool = Field(description="True when any input candles are synthetic: the ICs then say nothing.")
    horizon: int = Field(description="Bars ahead of the forward return.")
    target: str
    target_rows: int = Field(description="Feature rows that have a forward return.")
    features: list[FeatureStats]
    notes: list[str]


def forward_returns(close: np.ndarray, horizon: int) -> np.ndarray:
    """close[t + horizon] / close[t] − 1 on the grid; NaN at the end and wherever either bar is missing."""
    out = np.full(close.shape, np.nan)
    if horizon < len(close):
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def validation_report(fs: FeatureSet, horizon: int = 24) -> ValidationReport:
    """Distribution and rank IC of every feature column of `fs.frame` against the forward return.

    The forward return (see the module docstring) is computed from `fs.panel` for evaluation only.
    """
    bars = fs.panel.shape[0]
    accepted = f"a whole number of bars from 1 to {max(1, bars - 1)} (the feature set has {bars} bars)"
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or not 1 <= horizon < bars:
        raise InputError("horizon", f"{horizon!r} bars", accepted)
    horizon = int(horizon)
    rows, cols = _grid_positions(fs)
    fwd_grid = forward_returns(fs.panel.close, horizon)
    target = fwd_grid[rows, cols]
    names = [c for c in fs.frame.columns if pd.api.types.is_numeric_dtype(fs.frame[c])]
    stats = []
    for name in names:
        values = fs.frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        grid = np.full(fs.panel.shape, np.nan)
        grid[rows, cols] = values
        stats.append(_feature_stats(name, values, target, grid, fwd_grid))
    record = fs.record
    notes = [
        f"forward return over {horizon} bars of {fs.spec.timeframe}: evaluation only, it looks ahead by construction",
        f"consecutive forward returns overlap by {horizon - 1} bars: per-time ICs are autocorrelated and the "
        "t-statistic overstates significance",
    ]
    if record.synthetic:
        notes.append("synthetic input candles: these ICs describe a simulation, not a market")
    return ValidationReport(
        feature_set_id=fs.id, timeframe=fs.spec.timeframe, windows=dict(fs.spec.bars), symbols=list(fs.panel.symbols),
        rows=len(fs.frame), start=record.start, end=record.end, synthetic=record.synthetic, horizon=horizon,
        target=f"close[t+{horizon}] / close[t] - 1", target_rows=int(np.isfinite(target).sum()),
        features=stats, notes=notes,
    )


def write_report(report: ValidationReport, fs: FeatureSet, out_dir: Path) -> list[Path]:
    """report.json, confluence_heatmap.png and feature_distributions.png in out_dir (created if needed)."""
    from mcp_trader.features.charts import confluence_heatmap, feature_distributions

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = [f.name for f in report.features if f.name in fs.frame.columns]
    contents = {
        FILES[0]: (report.model_dump_json(indent=2) + "\n").encode(),
        FILES[1]: confluence_heatmap(fs.frame, fs.spec),
        FILES[2]: feature_distributions(fs.frame, columns),
    }
    paths = []
    for name, data in contents.items():
        path = out_dir / name
        write_atomically(path, functools.partial(Path.write_bytes, data=data))
        paths.append(path)
    return paths


def format_report(report: ValidationReport) -> str:
    """A plain-text table for the terminal, features sorted by |pooled IC| (those without one last)."""
    lines = [
        f"feature set {report.feature_set_id}: {report.timeframe}, {len(report.symbols)} assets, {report.rows:,} rows, "
        f"{report.start} .. {report.end}" + ("  [SYNTHETIC]" if report.synthetic else ""),
        f"symbols: {', '.join(report.symbols)}",
        f"target: {report.target} ({report.target_rows:,} rows; evaluation only)",
        "",
        f"{'feature':22} {'nan%':>6} {'mean':>10} {'std':>10} {'p1':>10} {'p50':>10} {'p99':>10} "
        f"{'IC pooled':>9} {'IC mean':>8} {'IC t':>7} {'times':>6}",
    ]
    ranked = sorted(report.features, key=lambda f: -1.0 if f.ic_pooled is None else abs(f.ic_pooled), reverse=True)
    for f in ranked:
        lines.append(
            f"{f.name:22} {100 * f.nan_rate:6.1f} {_g(f.mean):>10} {_g(f.std):>10} {_g(f.p1):>10} {_g(f.p50):>10} "
            f"{_g(f.p99):>10} {_f(f.ic_pooled, 4):>9} {_f(f.ic_mean, 4):>8} {_f(f.ic_tstat, 2):>7} {f.ic_times:>6}"
        )
    lines += ["", *(f"note: {n}" for n in report.notes)]
    return "\n".join(lines)


def _grid_positions(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Each frame row's (grid bar, asset column) in fs.panel."""
    times = fs.frame.index.get_level_values("time")
    symbols = fs.frame.index.get_level_values("symbol").astype(str)
    rows = fs.panel.index.get_indexer(times)
    cols = pd.Index(fs.panel.symbols).get_indexer(symbols)
    if (rows < 0).any() or (cols < 0).any():
        raise ValueError("the feature table has rows outside its panel's grid or symbols")
    return rows, cols


def _feature_stats(name: str, values: np.ndarray, target: np.ndarray, grid: np.ndarray, fwd: np.ndarray):
    n = len(values)
    finite = values[np.isfinite(values)]
    dist: dict[str, float | None] = dict.fromkeys(("mean", "std", "min", "p1", "p50", "p99", "max"))
    if len(finite):
        p1, p50, p99 = np.percentile(finite, [1, 50, 99])
        dist.update(mean=finite.mean(), std=finite.std(ddof=1) if len(finite) > 1 else None, min=finite.min(),
                    p1=p1, p50=p50, p99=p99, max=finite.max())
    both = np.isfinite(values) & np.isfinite(target)
    pooled = _spearman(values[both], target[both]) if both.sum() >= MIN_ROWS else None
    ics = _cross_sectional_ic(grid, fwd)
    ic_mean = ic_t = None
    if len(ics):
        ic_mean = float(ics.mean())
        std = ics.std(ddof=1) if len(ics) > 1 else 0.0
        ic_t = ic_mean / std * math.sqrt(len(ics)) if std > 0 else None
    return FeatureStats(
        name=name, nan_rate=float(np.isnan(values).mean()) if n else 1.0,
        inf_rate=float(np.isinf(values).mean()) if n else 0.0,
        **{k: _number(v) for k, v in dist.items()},
        ic_pooled=_number(pooled), ic_pooled_rows=int(both.sum()), ic_mean=_number(ic_mean), ic_tstat=_number(ic_t),
        ic_times=len(ics),
    )


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    return _pearson(pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy())


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if denominator == 0:
        return None  # a constant: no ranking to compare
    return max(-1.0, min(1.0, float(dx @ dy) / denominator))


def _cross_sectional_ic(feature: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Spearman IC across assets at each grid time with enough assets; times without one are dropped."""
    both = np.isfinite(feature) & np.isfinite(fwd)
    keep = both.sum(axis=1) >= MIN_CROSS_SECTION
    if not keep.any():
        return np.empty(0)
    both = both[keep]
    rx = pd.DataFrame(np.where(both, feature[keep], np.nan)).rank(axis=1).to_numpy()
    ry = pd.DataFrame(np.where(both, fwd[keep], np.nan)).rank(axis=1).to_numpy()
    count = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = rx - np.nansum(rx, axis=1, keepdims=True) / count[:, None]
        dy = ry - np.nansum(ry, axis=1, keepdims=True) / count[:, None]
        sxy, sxx, syy = (np.nansum(a * b, axis=1) for a, b in ((dx, dy), (dx, dx), (dy, dy)))
        ic = sxy / np.sqrt(sxx * syy)
    defined = (sxx > 0) & (syy > 0)
    return np.clip(ic[defined], -1.0, 1.0)


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
