"""trader://backtests…: backtest runs, a run's record, its equity curve (JSON, PNG) and its trades (CSV)."""

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.errors import NotFoundError
from mcp_trader.home import Home


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://backtests", name="backtests", title="Backtest runs", mime_type="application/json",
        description="Every backtest run, newest first: id, strategy, model, symbols, span, return, Sharpe, drawdown.",
    )
    async def list_runs() -> str:
        from mcp_trader.backtest.listing import BacktestListing

        records = await (await home.backtests()).records()
        return json.dumps({"backtests": [BacktestListing.of(r).model_dump() for r in records]}, indent=1)

    @server.resource(
        "trader://backtests/{run_id}", name="backtest", title="Backtest record", mime_type="application/json",
        description="A run's full record: settings, the data and signals it used (ids and hashes), metrics, trade "
                    "statistics, costs paid, exposure, funding coverage, buy-and-hold, monthly returns.",
    )
    async def record(run_id: str) -> str:
        return (await _found(home, run_id, "record")).decode()

    @server.resource(
        "trader://backtests/{run_id}/equity", name="backtest-equity", title="Equity curve",
        mime_type="application/json",
        description="Per bar: time, equity, cash, drawdown, gross exposure, margin used, open positions, and "
                    "buy-and-hold equity.",
    )
    async def equity(run_id: str) -> str:
        return (await _found(home, run_id, "equity")).decode()

    @server.resource(
        "trader://backtests/{run_id}/equity.png", name="backtest-equity-chart", title="Equity chart",
        mime_type="image/png", description="Equity against buy-and-hold of the same assets, and the drawdown.",
    )
    async def equity_chart(run_id: str) -> bytes:
        return await _found(home, run_id, "equity.png")

    @server.resource(
        "trader://backtests/{run_id}/trades", name="backtest-trades", title="Trades", mime_type="text/csv",
        description="One row per trade: symbol, side, quantity, decision/entry/exit times and prices, exit reason, "
                    "bars held, stop and take-profit, fees, slippage, funding, PnL.",
    )
    async def trades(run_id: str) -> str:
        return (await _found(home, run_id, "trades")).decode()




async def _found(home: Home, run_id: str, name: str) -> bytes:
    store = await home.backtests()
    try:
        if name == "record":
            return (await store.record(run_id)).model_dump_json(indent=1).encode()
        return await store.artifact(run_id, name)
    except NotFoundError as error:
        raise ResourceNotFoundError(str(error)) from error
