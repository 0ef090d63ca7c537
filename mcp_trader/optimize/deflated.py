"""The deflated Sharpe ratio (Bailey and López de Prado, 2014): how likely the best of N trials' Sharpe ratios
is real, given that the best of N tries at nothing is positive by luck alone.

All Sharpe ratios here are per bar (not annualised): SR = mean / std of per-bar returns over T bars.
  expected maximum of N null Sharpe ratios:
    SR0 = √V[SR_n] × ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e))),   γ = 0.5772… (Euler–Mascheroni)
  DSR = Φ((SR* − SR0) √(T − 1) / √(1 − skew × SR* + (kurtosis − 1) / 4 × SR*²))
DSR is the probability that the best trial's true Sharpe exceeds what luck alone would give; 1 − DSR is
the probability that it is a fluke. With one trial SR0 is 0 and DSR is the probabilistic Sharpe ratio.
"""

import math
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, Field

EULER_GAMMA = 0.5772156649015329
SIGNIFICANT = 0.95
_NORMAL = NormalDist()


class Deflated(BaseModel):
    trials: int = Field(description="Trials tried (completed and pruned).")
    best_sharpe_per_bar: float
    expected_max_sharpe_per_bar: float = Field(description="SR0: the best Sharpe expected from luck alone.")
    deflated_sharpe: float = Field(description="Probability that the best Sharpe beats luck (0 to 1).")
    p_fluke: float = Field(description="1 − deflated_sharpe.")
    significant: bool = Field(description=f"deflated_sharpe ≥ {SIGNIFICANT}.")
    bars: int
    skew: float
    kurtosis: float


def expected_max_sharpe(sharpes: list[float], trials: int) -> float:
    if trials < 2 or len(sharpes) < 2:
        return 0.0
    spread = float(np.std(sharpes, ddof=1))
    return spread * ((1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / trials)
                     + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (trials * math.e)))


def deflated_sharpe(best: float, sharpes: list[float], trials: int, bars: int, skew: float,
                    kurtosis: float) -> Deflated:
    sr0 = expected_max_sharpe(sharpes, trials)
    spread = 1 - skew * best + (kurtosis - 1) / 4 * best**2
    z = (best - sr0) * math.sqrt(max(bars - 1, 1)) / math.sqrt(spread) if spread > 0 else 0.0
    dsr = _NORMAL.cdf(z)
    return Deflated(
        trials=trials, best_sharpe_per_bar=best, expected_max_sharpe_per_bar=sr0, deflated_sharpe=dsr,
        p_fluke=1 - dsr, significant=dsr >= SIGNIFICANT, bars=bars, skew=skew, kurtosis=kurtosis,
    )


def moments(returns: np.ndarray) -> tuple[float, float, float]:
    """Per-bar Sharpe, skewness and (non-excess) kurtosis of a return series."""
    std = float(returns.std())
    if len(returns) < 2 or std == 0:
        return 0.0, 0.0, 3.0
    z = (returns - returns.mean()) / std
    return float(returns.mean() / std), float(np.mean(z**3)), float(np.mean(z**4))
