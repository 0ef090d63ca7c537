"""trader://accounts/{mode}…: the paper or live account's equity history (JSON, PNG) and its ledger."""

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.home import Home

MODES = ("paper", "live")


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://accounts/{mode}/equity", name="account-equity", title="Account equity history",
        mime_type="application/json",
        description="The account's equity snapshots (one per get_pnl call and per paper-loop bar): time, equity, "
                    "cash, unrealised PnL, gross notional.",
    )
    async def equity(mode: str) -> str:
        ledger = await _ledger(home, mode)
        return json.dumps({"mode": mode, "snapshots": await ledger.equity_history(mode)}, indent=1)

    @server.resource(
        "trader://accounts/{mode}/equity.png", name="account-equity-chart", title="Account equity chart",
        mime_type="image/png", description="Equity and cash of the account over its snapshots.",
    )
    async def equity_png(mode: str) -> bytes:
        import asyncio

        from mcp_trader.trading.charts import equity_chart

        history = await (await _ledger(home, mode)).equity_history(mode)
        return await asyncio.to_thread(equity_chart, history, f"{mode} account equity")

    @server.resource(
        "trader://accounts/{mode}/ledger", name="account-ledger", title="Orders and fills",
        mime_type="application/json",
        description="The ledger of the account: every order (intent, state, venue id, fills, fees, reason) and "
                    "every fill (price, quantity, fee, maker/taker, realised PnL), oldest first.",
    )
    async def ledger(mode: str) -> str:
        store = await _ledger(home, mode)
        orders = await store.orders(mode, None, None, None, 100_000)
        fills = await store.fills(mode)
        return json.dumps({"mode": mode, "orders": [o.model_dump() for o in reversed(orders)],
                           "fills": [f.model_dump() for f in fills]}, indent=1)


async def _ledger(home: Home, mode: str):
    if mode not in MODES:
        raise ResourceNotFoundError(f"no account {mode!r}; accounts: paper, live")
    return await home.ledger()
