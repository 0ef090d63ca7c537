"""The contract of a study: how it was set up (kept in the study itself, so that any worker can join), and
what it found, discounted for the trials tried."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mcp_trader.backtest.funding import FundingCoverage
from mcp_trader.data.models import MarketType
from mcp_trader.optimize.deflated import Deflated
from mcp_trader.optimize.overfitting import Overfitting
from mcp_trader.optimize.space import Target
from mcp_trader.policy.limits import RiskLimits


class StudyRequest(BaseModel):
    target: Target = "xgboost"
    symbols: list[str]
    timeframe: str = "1h"
    days: int | None = Field(None, ge=1, le=3650)
    as_of: datetime | None = None
    folds: int = Field(4, ge=2, le=20)
    n_trials: int = Field(100, ge=1, le=100_000)
    timeout_s: float | None = Field(None, gt=0, le=7 * 86_400)
    study: str | None = Field(None, min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.\-]+$")
    storage: str | None = None
    seed: int = 7
    capital: float = Field(10_000.0, gt=0)
    device: str = "auto"
    sources: list[str] | None = None
    market: MarketType = "perp"


class StudyConfig(BaseModel):
    """Stored in the study (user attribute "mcp_trader"): what every trial of it is evaluated on."""

    target: Target
    symbols: list[str]
    timeframe: str
    days: int | None
    as_of: str | None
    folds: int
    capital: float
    seed: int
    sources: list[str] | None
    market: MarketType
    feature_set_id: str
    input_hash: str = Field(description="Of the candles: a worker must build the same to join.")
    limits: RiskLimits = Field(RiskLimits(), description="The risk limits every trial trades under: the server's "
                                                         "when the study began (every worker uses these).")
    synthetic: bool
    package_version: str
    created_at: str


class TrialRow(BaseModel):
    number: int
    state: str
    value: float | None = Field(description="Annualised out-of-sample Sharpe over every fold's test bars.")
    params: dict[str, Any]
    fold_sharpes: list[float] | None
    total_return: float | None
    trades: int | None
    duration_s: float | None
    worker: str | None


class Best(BaseModel):
    number: int
    sharpe: float = Field(description="Annualised, out of sample, over every fold's test bars.")
    params: dict[str, Any]
    fold_sharpes: list[float]
    total_return: float
    trades: int


class Counts(BaseModel):
    total: int
    complete: int
    pruned: int
    failed: int
    running: int


class StudySummary(BaseModel):
    study: str
    storage: str = Field(description="The storage URL, password hidden.")
    target: Target
    symbols: list[str]
    timeframe: str
    folds: int
    synthetic: bool
    trials: Counts
    this_run: int = Field(description="Trials this call ran.")
    best: Best | None
    deflated: Deflated | None
    overfitting: Overfitting | None = Field(description="Probability of backtest overfitting by CSCV, over the "
                                                        "completed trials.")
    importances: dict[str, float] | None = Field(description="Parameter importances (PED-ANOVA), summing to 1.")
    funding: list[FundingCoverage] | None = Field(None, description="Per symbol, the funding this run's trials were "
                                                                    "charged and where it came from; absent when "
                                                                    "the summary is read back later.")
    verdict: str
    dashboard: str = Field(description="How to open the study in Optuna's dashboard.")
    join: str = Field(description="How another process or machine joins this study.")
    resources: dict[str, str]
