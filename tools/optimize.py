"""optimize: an Optuna study over model and strategy parameters, scored on out-of-sample backtests."""

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import SymbolList
from mcp_trader.tools.data import Market, Sources, Timeframe
from mcp_trader.tools.jobs import JobView, WaitSeconds, run_as_job

DESCRIPTION = """Search model and strategy settings with Optuna, scored only out of sample, and say whether the
best result beats luck.

Use it after a first train_model / run_backtest to tune them. Each trial draws settings (for xgboost
or lstm: the learner's settings, the label horizon and barrier, the entry confidence, and ATR stop and
take-profit multiples; for confluence: the score threshold, stops and holding limit), fits a model on
each walk-forward fold's training rows, backtests that fold's unseen test block with full costs, and
scores the chained test-block returns' Sharpe; trials far below the median after a fold are pruned.
The answer reports the trials tried, the best settings and Sharpe, the deflated Sharpe ratio (the
probability that the best Sharpe is more than what trying this many settings gives by chance) and the
probability of backtest overfitting (CSCV: how often the trial best on half the test bars is at or
below the median on the other half).
Cost: xgboost about 2-5 s per trial per fold on 3 assets × 150 days (CPU); 100 trials take minutes
to tens of minutes; lstm much more. Runs as a job with progress per trial: waits up to wait_seconds,
then answers with a job id for get_job. The study is stored (default: the home's SQLite file) and can
be resumed by name, opened in optuna-dashboard, or joined by workers: `mcp-trader optimize-worker
--study NAME --storage URL` on any machine (PostgreSQL storage for several machines)."""


async def optimize(
    ctx: Context,
    symbols: Annotated[SymbolList, Field(description="Two to 50 unified symbols; BTC is added as the reference.")],
    target: Annotated[
        Literal["xgboost", "lstm", "confluence", "trend_4h", "trend_1d", "breakout_4h", "breakout_1d", "momentum"],
        Field(description="What to tune: a learner with its labels and strategy, the confluence rule, or a baseline "
                          "rule's stops, take-profit and holding limit (the rule itself keeps its textbook settings)."),
    ] = "xgboost",
    n_trials: Annotated[int, Field(ge=1, le=100_000, description="Trials to run in this call.")] = 100,
    timeout_s: Annotated[
        float | None, Field(gt=0, le=604_800, description="Stop starting trials after this many seconds.")
    ] = None,
    study: Annotated[
        str | None, Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.\-]+$",
                          description="Study name: an existing one is resumed. Default: a new name.")
    ] = None,
    storage: Annotated[
        str | None, Field(description="Optuna storage URL (e.g. postgresql://user:pw@host/db) shared with workers. "
                                      "Default: the home's SQLite file. Its password is never shown.")
    ] = None,
    timeframe: Annotated[Timeframe, Field(description="Bar size.")] = "1h",
    days: Annotated[int | None, Field(ge=1, le=3650, description="History in days. Default 365.")] = None,
    as_of: Annotated[datetime | None, Field(description="End of the history, ISO 8601. Default now.")] = None,
    folds: Annotated[int, Field(ge=2, le=20, description="Walk-forward test blocks over the last half.")] = 4,
    seed: Annotated[int, Field(description="Seed of the sampler.")] = 7,
    device: Annotated[Literal["auto", "cuda", "cpu"], Field(description="For the learners.")] = "auto",
    sources: Sources = None,
    market: Market = "perp",
    wait_seconds: WaitSeconds = 45,
) -> JobView:
    from mcp_trader.models.device import resolve_device  # optuna, torch & co. load on first call
    from mcp_trader.optimize.records import StudyRequest, StudySummary
    from mcp_trader.optimize.study import open_storage, redacted, run_study

    home = home_of(ctx)
    async with tool_errors():
        request = StudyRequest(target=target, symbols=symbols, timeframe=timeframe, days=days, as_of=as_of,
                               folds=folds, n_trials=n_trials, timeout_s=timeout_s, study=study, storage=storage,
                               seed=seed, device=device, sources=sources, market=market)
        resolve_device(device)
        if storage is not None:
            await asyncio.to_thread(open_storage, storage)  # unreachable: a tool error now, not a failed job later

        async def work(control) -> StudySummary:
            return await run_study(home, request, control.report)

        params = request.model_dump(mode="json") | {"storage": redacted(storage) if storage else None}
        return await run_as_job(ctx, "optimize", params, work, wait_seconds)


def register(server: MCPServer) -> None:
    server.add_tool(
        optimize, title="Optimise settings", description=DESCRIPTION,
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False,
                                    openWorldHint=True),
    )
