"""Rolling statistics over the last n grid bars that skip missing values, compiled with numba.

TA-Lib's rolling functions (CORREL, SMA, STDDEV) need contiguous data: one NaN poisons every later
value. Cross-asset features must cope with assets that have gaps or start late, so these kernels
keep running sums of the present values only and give a statistic when at least COVERAGE of the
window is present. Each pass runs forward in time, so the value at bar t is bit-identical whatever
comes after t. Values are shifted by their column's first value to keep the sums well conditioned.
"""

import math

import numpy as np
from numba import njit

COVERAGE = 0.8  # share of a window's bars that must be present for a statistic to be given
FLAT = 1e-12  # a variance below this share of the mean square is rounding noise of a flat series


def min_count(window: int) -> int:
    return max(3, math.ceil(COVERAGE * window))


@njit(cache=True, nogil=True)
def _moments(x, window, need, mean_out, std_out):  # pragma: no cover - compiled
    bars, cols = x.shape
    n, s, ss, shift = np.zeros(cols), np.zeros(cols), np.zeros(cols), np.full(cols, np.nan)
    for t in range(bars):
        for k in range(cols):
            v = x[t, k]
            if not np.isnan(v):
                if np.isnan(shift[k]):
                    shift[k] = v
                v -= shift[k]
                n[k] += 1.0
                s[k] += v
                ss[k] += v * v
            if t >= window:
                v = x[t - window, k]
                if not np.isnan(v):
                    v -= shift[k]
                    n[k] -= 1.0
                    s[k] -= v
                    ss[k] -= v * v
            if n[k] >= need:
                m = s[k] / n[k]
                var = ss[k] / n[k] - m * m
                mean_out[t, k] = m + shift[k]
                std_out[t, k] = math.sqrt(var) if var > FLAT * ss[k] / n[k] else 0.0
            else:
                mean_out[t, k] = np.nan
                std_out[t, k] = np.nan


@njit(cache=True, nogil=True)
def _corr(x, y, xcol, ycol, window, need, out):  # pragma: no cover - compiled
    bars, cols = out.shape
    n, sx, sy = np.zeros(cols), np.zeros(cols), np.zeros(cols)
    sxx, syy, sxy = np.zeros(cols), np.zeros(cols), np.zeros(cols)
    shift_x, shift_y = np.full(cols, np.nan), np.full(cols, np.nan)
    for t in range(bars):
        for k in range(cols):
            a, b = x[t, xcol[k]], y[t, ycol[k]]
            if not (np.isnan(a) or np.isnan(b)):
                if np.isnan(shift_x[k]):
                    shift_x[k], shift_y[k] = a, b
                a, b = a - shift_x[k], b - shift_y[k]
                n[k] += 1.0
                sx[k] += a
                sy[k] += b
                sxx[k] += a * a
                syy[k] += b * b
                sxy[k] += a * b
            if t >= window:
                a, b = x[t - window, xcol[k]], y[t - window, ycol[k]]
                if not (np.isnan(a) or np.isnan(b)):
                    a, b = a - shift_x[k], b - shift_y[k]
                    n[k] -= 1.0
                    sx[k] -= a
                    sy[k] -= b
                    sxx[k] -= a * a
                    syy[k] -= b * b
                    sxy[k] -= a * b
            out[t, k] = np.nan
            if n[k] >= need:
                var_x = n[k] * sxx[k] - sx[k] * sx[k]
                var_y = n[k] * syy[k] - sy[k] * sy[k]
                if var_x > FLAT * n[k] * sxx[k] and var_y > FLAT * n[k] * syy[k]:
                    c = (n[k] * sxy[k] - sx[k] * sy[k]) / math.sqrt(var_x * var_y)
                    out[t, k] = min(1.0, max(-1.0, c))


def rolling_mean_std(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation (as TA-Lib's STDDEV) of each column."""
    x = np.ascontiguousarray(values, dtype=np.float64).reshape(len(values), -1)
    mean, std = np.empty(x.shape), np.empty(x.shape)
    _moments(x, window, min_count(window), mean, std)
    return mean.reshape(values.shape), std.reshape(values.shape)


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    return rolling_mean_std(values, window)[0]


def rolling_corr(
    x: np.ndarray, y: np.ndarray, window: int, xcol: np.ndarray | None = None, ycol: np.ndarray | None = None
) -> np.ndarray:
    """Correlation of columns x[:, xcol[k]] and y[:, ycol[k]] for each k (default: column by column)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    xcol = np.arange(x.shape[1]) if xcol is None else np.asarray(xcol, dtype=np.int64)
    ycol = np.arange(y.shape[1]) if ycol is None else np.asarray(ycol, dtype=np.int64)
    out = np.empty((x.shape[0], len(xcol)))
    _corr(x, y, xcol, ycol, window, min_count(window), out)
    return out
