"""One line per backtest run: what list_backtests and trader://backtests show. Plain pydantic, so the tool's
contract loads at server start without numpy or pandas."""

from typing import TYPE_CHECKING

from pydantic import BaseModel

from mcp_trader.backtest.params import Strategy

if TYPE_CHECKING:
    from mcp_trader.backtest.records import BacktestRecord


class BacktestListing(BaseModel):
    run_id: str
    created_at: str
    strategy: Strategy
    model_id: str | None
    symbols: list[str]
    timeframe: str
    start: str
    end: str
    synthetic: bool
    total_return: float
    sharpe: float | None
    max_drawdown: float
    trades: int
    buy_and_hold_return: float
    uri: str

    @classmethod
    def of(cls, r: "BacktestRecord") -> "BacktestListing":
        return cls(
            run_id=r.id, created_at=r.created_at, strategy=r.strategy, model_id=r.model_id, symbols=r.symbols,
            timeframe=r.timeframe, start=r.start, end=r.end, synthetic=r.synthetic,
            total_return=r.metrics.total_return, sharpe=r.metrics.sharpe, max_drawdown=r.metrics.max_drawdown,
            trades=r.trades.trades, buy_and_hold_return=r.buy_and_hold.total_return, uri=f"trader://backtests/{r.id}",
        )
