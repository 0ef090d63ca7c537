"""Performance figures of an equity curve and its trades. Returns are simple, per bar, risk-free rate 0;
annualised with the bars in a calendar year of a 24/7 market."""

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mcp_trader.data.timeframes import timeframe_ms

YEAR_MS = 365.25 * 86_400_000


class Headline(BaseModel):
    total_return: float
    annual_return: float | None = Field(description="Compound annual growth rate.")
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float = Field(description="Largest fall from a peak, a fraction (0.2 = −20 %).")
    max_drawdown_days: float = Field(description="Longest time spent below a previous peak.")
    final_equity: float


class TradeStats(BaseModel):
    trades: int
    win_rate: float | None
    profit_factor: float | None
    average_win: float | None
    average_loss: float | None
    average_bars_held: float | None
    exits: dict[str, int] = Field(description="Trades by how they ended.")
    long_trades: int
    short_trades: int


class CostsPaid(BaseModel):
    fees: float
    slippage: float = Field(description="What slippage and impact cost against the reference prices.")
    funding: float = Field(description="Funding paid (negative: received).")
    drag: float = Field(0.0, description="Fees, slippage and funding per year as a share of the mean equity: the "
                                         "annual return costs took, whatever the equity did.")

    @classmethod
    def of(cls, fees: float, slippage: float, funding: float, equity: np.ndarray, years: float) -> "CostsPaid":
        mean_equity = float(np.mean(equity)) if len(equity) else 0.0
        total = fees + slippage + funding
        drag = total / mean_equity / years if years > 0 and mean_equity > 0 else 0.0
        return cls(fees=fees, slippage=slippage, funding=funding, drag=drag)


class Exposure(BaseModel):
    time_in_market: float = Field(description="Share of bars with at least one open position.")
    average_leverage: float = Field(description="Mean gross notional / equity.")
    max_leverage: float
    max_open_positions: int
    turnover: float = Field(description="Traded notional per year, in multiples of the mean equity.")


def bars_per_year(timeframe: str) -> float:
    return YEAR_MS / timeframe_ms(timeframe)


def returns_of(equity: np.ndarray, capital: float) -> np.ndarray:
    """Simple per-bar returns of an equity curve started at `capital` (0 after a ruin: nothing is earned any more)."""
    curve = np.concatenate(([capital], equity))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(curve[:-1] > 0, curve[1:] / curve[:-1] - 1.0, 0.0)


def headline(equity: np.ndarray, capital: float, timeframe: str) -> Headline:
    curve = np.concatenate(([capital], equity))
    returns = returns_of(equity, capital)
    per_year = bars_per_year(timeframe)
    years = len(equity) / per_year
    total = curve[-1] / capital - 1.0
    annual = (curve[-1] / capital) ** (1 / years) - 1.0 if years > 0 and curve[-1] > 0 else None
    drawdown = drawdowns(equity, capital)
    max_dd = float(-drawdown.min()) if len(drawdown) else 0.0
    return Headline(
        total_return=total, annual_return=annual, sharpe=_ratio(returns.mean(), returns.std(), per_year),
        sortino=_ratio(returns.mean(), math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)), per_year),
        calmar=annual / max_dd if annual is not None and max_dd > 0 else None, max_drawdown=max_dd,
        max_drawdown_days=_underwater_days(drawdown, timeframe), final_equity=float(curve[-1]),
    )


def drawdowns(equity: np.ndarray, capital: float) -> np.ndarray:
    peak = np.maximum.accumulate(np.concatenate(([capital], equity)))[1:]
    return equity / peak - 1.0


def trade_stats(pnl: np.ndarray, held: np.ndarray, reasons: list[str], sides: np.ndarray) -> TradeStats:
    wins, losses = pnl[pnl > 0], pnl[pnl <= 0]
    return TradeStats(
        trades=len(pnl), win_rate=len(wins) / len(pnl) if len(pnl) else None,
        profit_factor=wins.sum() / -losses.sum() if losses.sum() < 0 else None,
        average_win=float(wins.mean()) if len(wins) else None,
        average_loss=float(losses.mean()) if len(losses) else None,
        average_bars_held=float(held.mean()) if len(held) else None,
        exits={r: reasons.count(r) for r in dict.fromkeys(reasons)},
        long_trades=int((sides > 0).sum()), short_trades=int((sides < 0).sum()),
    )


def monthly_returns(equity: np.ndarray, times: pd.DatetimeIndex, capital: float) -> list[dict]:
    """One row per year: each month's return (month-end equity over the previous month-end's) and the year's."""
    series = pd.Series(equity, index=times.tz_convert("UTC").tz_localize(None))
    ends = series.groupby(series.index.to_period("M")).last()
    previous = ends.shift(1).fillna(capital)
    months = ends / previous - 1.0
    rows = []
    for year, group in months.groupby(months.index.year):
        compounded = float(np.prod(1.0 + group.to_numpy()) - 1.0)
        rows.append({"year": int(year), "months": {f"{p.month:02d}": round(float(r), 6) for p, r in group.items()},
                     "year_return": round(compounded, 6)})
    return rows


def _ratio(mean: float, spread: float, per_year: float) -> float | None:
    return float(mean / spread * math.sqrt(per_year)) if spread > 0 else None


def _underwater_days(drawdown: np.ndarray, timeframe: str) -> float:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (drawdown < 0).astype(np.int8), [0]))))
    longest = int((edges[1::2] - edges[::2]).max()) if len(edges) else 0
    return longest * timeframe_ms(timeframe) / 86_400_000
