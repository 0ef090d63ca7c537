"""Forward evaluation: did the kept model trade the bars after its training data the way its walk-forward
out-of-sample backtest said it would? The realised Sharpe on the later span is set against the interval the
out-of-sample run reported (same risk, costs, gate and bootstrap), with how each figure moved."""

from pydantic import BaseModel, Field

from mcp_trader.backtest.intervals import Interval, Intervals
from mcp_trader.backtest.metrics import Headline


class Figures(BaseModel):
    start: str
    end: str
    sharpe: float | None
    sharpe_interval: Interval | None
    annual_return: float | None
    max_drawdown: float
    trades_per_day: float


class Forward(BaseModel):
    out_of_sample: Figures = Field(description="The model's walk-forward out-of-sample backtest, whole span.")
    after_training: Figures = Field(description="This run: the kept model on bars after its training data.")
    inside: bool | None = Field(description="The realised Sharpe lies inside the out-of-sample Sharpe's interval; "
                                            "null when either Sharpe is undefined.")
    verdict: str


def figures(start: str, end: str, bars: int, bars_per_day: float, headline: Headline, spread: Intervals | None,
            trades: int) -> Figures:
    return Figures(start=start, end=end, sharpe=headline.sharpe, sharpe_interval=spread.sharpe if spread else None,
                   annual_return=headline.annual_return, max_drawdown=headline.max_drawdown,
                   trades_per_day=trades / (bars / bars_per_day) if bars else 0.0)


def compare(before: Figures, after: Figures, confidence: float) -> Forward:
    band = before.sharpe_interval
    inside: bool | None = None
    if band is None or after.sharpe is None:
        verdict = "no comparison: a Sharpe ratio is undefined (no variation in returns) on one of the spans"
    else:
        inside = band.low <= after.sharpe <= band.high
        where = "inside" if inside else ("below" if after.sharpe < band.low else "above")
        verdict = (f"realised Sharpe {after.sharpe:.2f} after training is {where} the out-of-sample "
                   f"{confidence:.0%} interval {band.low:.2f} to {band.high:.2f} (Sharpe {before.sharpe:.2f}); "
                   f"annual return {_pct(before.annual_return)} → {_pct(after.annual_return)}, max drawdown "
                   f"{before.max_drawdown:.1%} → {after.max_drawdown:.1%}, trades per day "
                   f"{before.trades_per_day:.2f} → {after.trades_per_day:.2f}")
        if not inside:
            verdict += ("; the out-of-sample backtest did not describe how the model trades new bars" if where ==
                        "below" else "; better than the out-of-sample backtest said: luck, or a kinder market")
    return Forward(out_of_sample=before, after_training=after, inside=inside, verdict=verdict)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
