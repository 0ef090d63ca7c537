"""How far to trust a backtest's figures.

- 95 % intervals for the Sharpe ratio, the annual return and the max drawdown, by a stationary block bootstrap of
  the run's per-bar returns (Politis & Romano, 1994): resampled paths keep the returns' dependence (volatility
  clustering, positions held over many bars) up to the mean block length. That length is the Politis & White
  (2004, with Patton, Politis & White's 2009 correction) automatic choice, from arch, computed on the returns and on
  their squares: the larger of the two, at least one bar. Intervals are the bootstrap distribution's percentiles.
- The Sharpe ratio's standard error by Mertens (2002): √((1 + SR²/2 − γ₃·SR + (γ₄ − 3)/4·SR²) / T) per bar, SR per
  bar, γ₃ skewness, γ₄ kurtosis; under normal returns it is Lo's (2002) √((1 + SR²/2) / T). Annualised with √(bars
  per year), as the Sharpe ratio is.
"""

import math

import numpy as np
from pydantic import BaseModel, Field

from mcp_trader.backtest.params import Bootstrap

MIN_BARS = 30  # fewer returns say nothing about their own spread


class Interval(BaseModel):
    low: float
    high: float


class Intervals(BaseModel):
    """Intervals of a run's headline figures, with how they were made (so that they can be made again)."""

    confidence: float
    method: str = "stationary block bootstrap of per-bar returns, percentile intervals"
    samples: int
    seed: int
    block_bars: float = Field(description="Mean block length of the bootstrap, in bars.")
    sharpe: Interval | None
    annual_return: Interval | None
    max_drawdown: Interval | None
    sharpe_standard_error: float | None = Field(description="Mertens (2002), annualised.")


def intervals(returns: np.ndarray, bars_per_year: float, settings: Bootstrap) -> Intervals:
    returns = np.asarray(returns, dtype=np.float64)
    block = settings.block_bars or block_length(returns)
    empty = Intervals(confidence=settings.confidence, samples=settings.samples, seed=settings.seed, block_bars=block,
                      sharpe=None, annual_return=None, max_drawdown=None,
                      sharpe_standard_error=sharpe_standard_error(returns, bars_per_year))
    if len(returns) < MIN_BARS or not returns.std() > 0:
        return empty
    from arch.bootstrap import StationaryBootstrap  # statsmodels and scipy load on first use

    # arch annotates block_size as int, but the stationary bootstrap takes any mean block length (p = 1/block_size).
    resampler = StationaryBootstrap(block, returns, seed=np.random.default_rng(settings.seed))  # type: ignore[arg-type]
    draws = resampler.apply(lambda r: _figures(r, bars_per_year), settings.samples)
    tail = (1 - settings.confidence) / 2 * 100
    low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    figures = {name: Interval(low=float(low[i]), high=float(high[i])) for i, name in enumerate(FIGURES)}
    return empty.model_copy(update=figures)


def sharpe_standard_error(returns: np.ndarray, bars_per_year: float) -> float | None:
    if len(returns) < MIN_BARS or not returns.std() > 0:
        return None
    sr = returns.mean() / returns.std()
    z = (returns - returns.mean()) / returns.std()
    skew, kurtosis = float(np.mean(z**3)), float(np.mean(z**4))
    variance = (1 + sr**2 / 2 - skew * sr + (kurtosis - 3) / 4 * sr**2) / len(returns)
    return math.sqrt(max(variance, 0.0) * bars_per_year)


def block_length(returns: np.ndarray) -> float:
    if len(returns) < MIN_BARS or not returns.std() > 0:
        return 1.0
    from arch.bootstrap import optimal_block_length

    lengths = optimal_block_length(np.column_stack([returns, (returns - returns.mean()) ** 2]))["stationary"]
    return float(max(1.0, np.nanmax(lengths.to_numpy())))


FIGURES = ("sharpe", "annual_return", "max_drawdown")


def _figures(returns: np.ndarray, bars_per_year: float) -> np.ndarray:
    spread = returns.std()
    curve = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate(([1.0], curve)))[1:]
    final = curve[-1]
    annual = final ** (bars_per_year / len(returns)) - 1.0 if final > 0 else -1.0
    sharpe = returns.mean() / spread * math.sqrt(bars_per_year) if spread > 0 else np.nan
    return np.array([sharpe, annual, float(np.max(1.0 - curve / peak))])
