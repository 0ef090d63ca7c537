"""run_backtest and list_backtests: a model's or the confluence rule's trades, with costs and risk rules."""

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_trader.backtest.listing import BacktestListing
from mcp_trader.backtest.params import DEFAULT_MARGIN, Bootstrap, Costs, Risk
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import CostMargin, EdgeChoice, Identifier, SymbolList
from mcp_trader.tools.data import Market, Sources, Timeframe
from mcp_trader.tools.jobs import JobView, WaitSeconds, run_as_job

ModelId = Annotated[Identifier | None, Field(description="A model from train_model / list_models.")]
Strategy = Annotated[
    Literal["model", "confluence"] | None,
    Field(description="model (default when model_id is given) or confluence: BUY when the confluence score ≥ "
                      "threshold, SELL when ≤ −threshold."),
]
BacktestStrategy = Annotated[
    Literal["model", "confluence", "trend_4h", "trend_1d", "breakout_4h", "breakout_1d", "momentum"] | None,
    Field(description="model (default when model_id is given); confluence: BUY when the confluence score ≥ "
                      "threshold, SELL when ≤ −threshold; or a baseline rule: trend_4h / trend_1d (20- over 50-bar "
                      "moving average), breakout_4h / breakout_1d (20-bar Donchian), momentum (cross-sectional, "
                      "30-day, top and bottom thirds)."),
]

DESCRIPTION = """Backtest a trained model's signals, or the rule-based confluence strategy, on a portfolio of assets.

Use it after train_model (pass model_id) to see what the model's calls would have earned after
costs, or with strategy='confluence' to test the confluence score as a rule with no model. A signal is
taken only where its expected move over the horizon pays the round trip (fees, slippage, impact) by
cost_margin, sized by the share of the move left after costs; the confluence rule also holds a position
24 bars before an opposite signal may close it. Signals are decided at each bar's close and filled at
the next bar's open with slippage, volume-dependent
impact and Aster's taker fee; ATR stops and take-profits are checked on later bars' high/low (the
stop wins when a bar reaches both); perpetual funding is paid where its history is known. Sizing and limits are
the server's, the ones paper and live orders pass (by default 1 % of equity risked per trade against a 3-ATR stop,
at most 5,000 USDT an order, 5 positions, 3× gross leverage, no new position after a 5 % daily loss until the next
UTC day); `risk` overrides them for this run only.
A model's signals are honest: by default its walk-forward out-of-sample predictions (each bar scored
by a model that never saw it); signals='after_training' applies the kept model to bars after its
training data and says whether the realised Sharpe falls inside the out-of-sample run's interval.
Cost: a few seconds for 10 assets × a year of 1h bars. Runs as a job: waits up to
wait_seconds, then answers with a job id for get_job. The result: run id, return, Sharpe, Sortino,
Calmar, drawdown, 95 % intervals of the Sharpe, annual return and drawdown (stationary block bootstrap,
seeded) and the Sharpe's standard error, trade statistics, fees/slippage/funding paid, exposure, the same figures for
buy-and-hold of the same assets, and URIs of the equity curve (JSON, PNG) and the trades (CSV)."""


async def run_backtest(
    ctx: Context,
    model_id: ModelId = None,
    strategy: BacktestStrategy = None,
    signals: Annotated[
        Literal["out_of_sample", "after_training"],
        Field(description="For a model: its walk-forward out-of-sample predictions, or the kept model on bars after "
                          "its training data (needs candles after trained_until)."),
    ] = "out_of_sample",
    symbols: Annotated[
        SymbolList | None,
        Field(description="Assets to trade. A model: a subset of its symbols (default all). Confluence: required, "
                          "two to 50; BTC joins the feature universe as the reference."),
    ] = None,
    timeframe: Annotated[Timeframe | None, Field(description="Bar size; a model's own, 1h for confluence.")] = None,
    start: Annotated[datetime | None, Field(description="First bar to trade, ISO 8601, UTC if no zone.")] = None,
    end: Annotated[datetime | None, Field(description="Last bar to trade, ISO 8601. Default: the data's end.")] = None,
    days: Annotated[
        int | None, Field(ge=1, le=3650, description="Days to trade before end, instead of start. Default: a "
                                                     "model's whole out-of-sample span, else 365.")
    ] = None,
    capital: Annotated[float, Field(gt=0, le=1e12, description="Starting equity, in the quote currency.")] = 10_000,
    min_confidence: Annotated[
        float, Field(ge=0, le=1, description="A model's BUY/SELL needs that class most likely and this likely.")
    ] = 0.5,
    threshold: Annotated[float, Field(gt=0, le=1, description="Confluence score to act on (0 to 1).")] = 0.5,
    cost_margin: CostMargin = DEFAULT_MARGIN,
    edge: EdgeChoice = "validated",
    risk: Annotated[Risk | None, Field(description="Overrides of the server's risk limits for this run, and its "
                                                   "exits (take-profit, holding limit, minimum hold, shorts).")] = None,
    costs: Annotated[Costs | None, Field(description="Fees, slippage, impact and funding to override.")] = None,
    bootstrap: Annotated[
        Bootstrap | None, Field(description="The block bootstrap of the intervals: samples, seed, block length.")
    ] = None,
    sources: Sources = None,
    market: Market = "perp",
    wait_seconds: WaitSeconds = 45,
) -> JobView:
    from mcp_trader.backtest.inputs import BacktestRequest, check_span  # pandas & numba load on first call
    from mcp_trader.backtest.records import BacktestSummary
    from mcp_trader.backtest.runs import run_backtest as run
    from mcp_trader.errors import InputError

    home = home_of(ctx)
    async with tool_errors():
        if strategy == "model" and model_id is None:
            raise InputError("model_id", "strategy 'model' needs a model", "a model id from train_model or "
                             "list_models, or strategy='confluence'")
        request = BacktestRequest(
            strategy=strategy or ("model" if model_id or not symbols else "confluence"), model_id=model_id,
            signals=signals, symbols=symbols, timeframe=timeframe, start=start, end=end, days=days, capital=capital,
            min_confidence=min_confidence, threshold=threshold, risk=risk or Risk(), costs=costs or Costs(),
            bootstrap=bootstrap or Bootstrap(), cost_margin=cost_margin, edge=edge, sources=sources, market=market,
        )
        check_span(request)
        if request.model_id is not None:
            await _known_model(home, request.model_id)

        async def work(control) -> BacktestSummary:
            return BacktestSummary.of(await run(home, request, control.report))

        return await run_as_job(ctx, "run_backtest", request.model_dump(mode="json"), work, wait_seconds)


async def list_backtests(ctx: Context) -> list[BacktestListing]:
    return [BacktestListing.of(r) for r in await (await home_of(ctx).backtests()).records()]


async def _known_model(home, model_id: str) -> None:
    """An unknown model is a tool error now, not a failed job later."""
    await (await home.models()).record(model_id)


def register(server: MCPServer) -> None:
    server.add_tool(
        run_backtest, title="Run a backtest", description=DESCRIPTION,
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False,
                                    openWorldHint=True),
    )
    server.add_tool(
        list_backtests, title="List backtests",
        description="Every backtest run, newest first: id, strategy, model, symbols, span, total return, Sharpe, max "
                    "drawdown, trades, buy-and-hold return, and its record URI. Instant.",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False),
    )
