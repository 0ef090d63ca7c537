"""collect_data: candles from Aster, Binance, CoinGecko, the bundled sample or synthetic."""

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_trader.data.models import CollectRequest, CollectResult
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import SymbolList

Timeframe = Literal["1h", "4h", "1d"]
SourceName = Literal["aster", "binance", "coingecko", "sample", "synthetic"]
Sources = Annotated[
    list[SourceName] | None, Field(description="Source order to try; default from MCP_TRADER_SOURCES.")
]
Market = Annotated[Literal["perp", "spot"], Field(description="Market type for symbols without a ':SETTLE' suffix.")]

DESCRIPTION = """Collect OHLCV candles for symbols and timeframes into the local store, with provenance.

Use it before computing features, training or backtesting. Sources are tried in order (default
aster → binance → coingecko → sample → synthetic) per symbol and timeframe; each result names the
source that served and why the others did not. Offline, the bundled real sample (14 assets, hourly,
2021-01 to 2024-09) serves, and synthetic data after it, always marked synthetic. A second call
fetches only bars not stored yet. Cost: from the store or the sample well under a second; from an
exchange about a second per 1,000 bars per symbol. Returns dataset ids (read them at
trader://datasets/{dataset_id}), bars served, the span, a quality summary and the source attempts."""


async def collect_data(
    ctx: Context,
    symbols: Annotated[
        SymbolList,
        Field(description="Unified symbols such as 'BTC/USDT'; 'BTC/USDT:USDT' means the perpetual."),
    ],
    timeframes: Annotated[list[Timeframe], Field(description="Bar sizes to collect.")] = ["1h"],  # noqa: B006
    days: Annotated[
        int | None, Field(description="The last N days up to now (1 to 3650). Default 30 unless start is given.")
    ] = None,
    start: Annotated[datetime | None, Field(description="Window start, ISO 8601, UTC if no zone.")] = None,
    end: Annotated[datetime | None, Field(description="Window end (exclusive), ISO 8601; default now.")] = None,
    sources: Sources = None,
    market: Market = "perp",
) -> CollectResult:
    request = CollectRequest(
        symbols=symbols, timeframes=timeframes, days=days, start=start, end=end, sources=sources, market=market
    )
    from mcp_trader.data.collect import Collector  # pandas & co. load on first call, keeping start-up fast

    async with tool_errors():
        return await Collector(home_of(ctx)).collect(request, progress=ctx.report_progress)


def register(server: MCPServer) -> None:
    server.add_tool(
        collect_data,
        title="Collect market data",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True
        ),
    )
