"""The contract of a backtest run: what it was built from, with what settings, and how it did."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_trader.backtest.forward import Forward
from mcp_trader.backtest.funding import FundingCoverage
from mcp_trader.backtest.intervals import Intervals
from mcp_trader.backtest.metrics import CostsPaid, Exposure, Headline, TradeStats
from mcp_trader.backtest.params import Bootstrap, Costs, Risk, Strategy
from mcp_trader.policy.rules import Policy

SignalSource = Literal["out_of_sample", "after_training"]


class DataUsed(BaseModel):
    dataset_id: str
    symbol: str
    source: str
    synthetic: bool
    content_hash: str = Field(description="Of the stored dataset when the run read it.")


class BaselineRun(BaseModel):
    """A baseline strategy on the run's span, assets, costs and risk rules."""

    strategy: str
    rule: str
    metrics: Headline
    intervals: Intervals | None
    trades: int
    trades_per_day: float
    turnover: float = Field(0.0, description="Traded notional per year, in multiples of the mean equity.")
    costs_paid: CostsPaid


class BacktestRecord(BaseModel):
    id: str
    created_at: str
    strategy: Strategy
    model_id: str | None
    signals: str = Field(description="Where the signals came from, in words.")
    request: dict[str, Any] = Field(description="The request as given: running it again reproduces the run.")
    symbols: list[str] = Field(description="The assets traded.")
    universe: list[str] = Field(description="The assets the features were computed over.")
    timeframe: str
    start: str
    end: str = Field(description="Open time of the last bar.")
    bars: int
    capital: float
    risk: Risk = Field(description="The risk rules as asked: overrides of the server's limits.")
    policy: Policy = Field(description="What the run traded by: the limits (the server's, with the overrides), the "
                                       "take-profit, the holding limit and the minimum hold, as paper and live apply "
                                       "them.")
    costs: Costs
    bootstrap: Bootstrap = Bootstrap()
    rule: dict[str, Any] = Field(description="The signal rule's own settings.")
    synthetic: bool
    data: list[DataUsed]
    feature_set_id: str | None
    candles_hash: str = Field(description="sha256 of the traded candles (the arrays the engine saw).")
    signals_hash: str = Field(description="sha256 of the signal and strength arrays.")
    funding_source: str
    funding: list[FundingCoverage]
    metrics: Headline
    intervals: Intervals | None = None  # runs recorded before intervals existed have none
    forward: Forward | None = None  # an after-training run against the model's out-of-sample run
    trades: TradeStats
    costs_paid: CostsPaid
    exposure: Exposure
    buy_and_hold: Headline
    buy_and_hold_intervals: Intervals | None = None
    baselines: list[BaselineRun] = []
    beats_buy_and_hold: bool
    monthly_returns: list[dict[str, Any]]
    summary: str
    notes: list[str]
    seconds: float
    versions: dict[str, str]
    artifacts: list[str]


class BacktestSummary(BaseModel):
    """What run_backtest answers; the full record (monthly returns, provenance) is a resource."""

    run_id: str
    strategy: Strategy
    model_id: str | None
    signals: str
    symbols: list[str]
    timeframe: str
    start: str
    end: str
    bars: int
    synthetic: bool
    metrics: Headline
    intervals: Intervals | None = Field(description="95 % intervals of the Sharpe, annual return and max drawdown, "
                                                    "and the Sharpe's standard error.")
    buy_and_hold: Headline
    buy_and_hold_intervals: Intervals | None
    forward: Forward | None = Field(None, description="signals='after_training': the realised Sharpe against the "
                                                      "interval of the model's walk-forward out-of-sample backtest.")
    baselines: list[BaselineRun] = Field(description="Flat, trend following and breakout on 4h and 1d, and "
                                                     "cross-sectional momentum on the same span, costs and risk.")
    beats_buy_and_hold: bool
    trades: TradeStats
    costs_paid: CostsPaid
    exposure: Exposure
    funding: list[FundingCoverage]
    summary: str
    notes: list[str]
    resources: dict[str, str]

    @classmethod
    def of(cls, r: BacktestRecord) -> "BacktestSummary":
        uri = f"trader://backtests/{r.id}"
        return cls(
            run_id=r.id, strategy=r.strategy, model_id=r.model_id, signals=r.signals, symbols=r.symbols,
            timeframe=r.timeframe, start=r.start, end=r.end, bars=r.bars, synthetic=r.synthetic, metrics=r.metrics,
            intervals=r.intervals, forward=r.forward, buy_and_hold=r.buy_and_hold,
            buy_and_hold_intervals=r.buy_and_hold_intervals, baselines=r.baselines,
            beats_buy_and_hold=r.beats_buy_and_hold, trades=r.trades, costs_paid=r.costs_paid, exposure=r.exposure,
            funding=r.funding, summary=r.summary, notes=r.notes,
            resources={"record": uri, "equity": f"{uri}/equity", "equity_chart": f"{uri}/equity.png",
                       "trades": f"{uri}/trades"},
        )
