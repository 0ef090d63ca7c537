"""compute_confluence: cross-asset confluence features and the latest snapshot per asset."""

from datetime import datetime
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_trader.features.models import ConfluenceResult
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import SymbolList
from mcp_trader.tools.data import Market, Sources, Timeframe

DESCRIPTION = """Compute cross-asset confluence features for several symbols and return the latest snapshot.

Use it to see which assets move together and whose signals (RSI, MACD, Bollinger, momentum, volume)
agree with the rest of the market, before training or trading. It collects the candles it needs
(like collect_data; BTC is added as the correlation reference), computes ~45 strictly causal
features per asset and bar (TA-Lib indicators, correlations to BTC / the market / each other over
each window, volume confluence, technical and momentum alignment, liquidity of thin assets), and
stores the full table under a feature-set id. Cost: about a second for 10 assets × 120 days
offline; the same inputs again are read from the store. Returns per asset the confluence score
(direction × alignment, -1 bearish … +1 bullish) with its components, the strongest aligned
assets, the data sources, and URIs of the full table (CSV) and a heatmap (PNG)."""


async def compute_confluence(
    ctx: Context,
    symbols: Annotated[
        SymbolList, Field(description="Two to 50 unified symbols such as 'ETH/USDT'; BTC is added if missing.")
    ],
    timeframe: Annotated[Timeframe, Field(description="Bar size.")] = "1h",
    windows: Annotated[
        list[str] | None,
        Field(description="Rolling windows like '24h', '7d', '30d' (1 to 4; each a whole number of bars, at "
                          "least 3). Default 24h, 7d, 30d (1d bars: 7d, 30d, 90d)."),
    ] = None,
    as_of: Annotated[
        datetime | None,
        Field(description="Snapshot time, ISO 8601 (UTC if no zone): features use only bars open at or before "
                          "it. Default now. Offline, the bundled sample covers 2021-01-01 to 2024-09-30."),
    ] = None,
    days: Annotated[
        int | None, Field(description="History before as_of to compute over (1 to 3650). Default 4 × the longest "
                                      "window, at least 30.")
    ] = None,
    sources: Sources = None,
    market: Market = "perp",
) -> ConfluenceResult:
    from mcp_trader.features.dataset import FeatureRequest  # numpy, TA-Lib and numba load on first call
    from mcp_trader.features.snapshot import compute_confluence as compute

    request = FeatureRequest(
        symbols=symbols, timeframe=timeframe, windows=windows, as_of=as_of, days=days, sources=sources, market=market
    )
    async with tool_errors():
        return await compute(home_of(ctx), request, progress=ctx.report_progress)


def register(server: MCPServer) -> None:
    server.add_tool(
        compute_confluence,
        title="Compute confluence features",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True
        ),
    )
