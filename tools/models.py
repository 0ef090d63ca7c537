"""train_model and list_models: walk-forward-evaluated XGBoost / LSTM / ensemble classifiers."""

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_trader.models.listing import ModelListing
from mcp_trader.models.params import LSTMParams, XGBParams
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import SymbolList
from mcp_trader.tools.data import Market, Sources, Timeframe
from mcp_trader.tools.jobs import JobView, WaitSeconds, run_as_job

DESCRIPTION = """Train a BUY/HOLD/SELL classifier on confluence features and report how it did out of sample.

Use it after compute_confluence looks promising, before backtesting. Labels are triple-barrier
(volatility-scaled profit-take / stop-loss / time limit over `horizon` bars); the aster_native
variant adds thin-asset features and widens the barriers by trading costs. The model is scored by
walk-forward evaluation with purging and an embargo of at least the horizon, next to two
baselines (majority class; a momentum rule), and the answer says plainly whether it beats them.
Cost: XGBoost on 10 assets × 365 days of 1h bars about 30 s on 2 CPU cores; the LSTM's defaults
(3 layers × 256, 60-bar sequences) are sized for a GPU: minutes there, hours on a small CPU, so
shrink it with `lstm` overrides on CPU. It runs as a job: the call waits up to wait_seconds with
progress notifications, then answers with a job id for get_job. The result: model id, verdict,
out-of-sample and baseline figures per fold, top features, and URIs of the full report and the
feature-importance chart."""


async def train_model(
    ctx: Context,
    symbols: Annotated[SymbolList, Field(description="Two to 50 unified symbols; BTC is added as the reference.")],
    kind: Annotated[Literal["xgboost", "lstm", "ensemble"], Field(description="The learner.")] = "xgboost",
    variant: Annotated[
        Literal["general", "aster_native"],
        Field(description="general: technical + confluence features; aster_native: also listing age, Amihud "
                          "illiquidity and spread, with barriers widened by fees + spread."),
    ] = "general",
    timeframe: Annotated[Timeframe, Field(description="Bar size.")] = "1h",
    horizon: Annotated[int, Field(ge=1, le=1000, description="Label time limit in bars (1 to 1000).")] = 24,
    days: Annotated[
        int | None, Field(ge=1, le=3650, description="History to train and test on, in days. Default 365.")
    ] = None,
    as_of: Annotated[
        datetime | None,
        Field(description="End of the history, ISO 8601. Default now; offline the sample ends 2024-09-30."),
    ] = None,
    device: Annotated[
        Literal["auto", "cuda", "cpu"], Field(description="auto uses CUDA when present, else the CPU.")
    ] = "auto",
    folds: Annotated[int, Field(ge=2, le=20, description="Walk-forward test blocks over the last half.")] = 4,
    scheme: Annotated[
        Literal["expanding", "rolling"], Field(description="Training window: all earlier bars, or a fixed length.")
    ] = "expanding",
    embargo: Annotated[
        int | None, Field(ge=1, description="Bars between training labels and test; at least the horizon.")
    ] = None,
    barrier: Annotated[float, Field(gt=0, le=10, description="Barrier width in σ × √horizon.")] = 1.0,
    target: Annotated[
        Literal["barrier", "meta", "return"],
        Field(description="barrier: BUY / HOLD / SELL by the triple barrier touched first; meta: meta-labels on a "
                          "momentum primary side (the sign of the trailing horizon's return): the model learns when "
                          "taking that side pays; return (xgboost only): regression of the forward return over the "
                          "horizon in barrier widths, clipped to ±1, traded by its sign through the cost gate."),
    ] = "barrier",
    xgboost: Annotated[XGBParams | None, Field(description="XGBoost settings to override.")] = None,
    lstm: Annotated[LSTMParams | None, Field(description="LSTM settings to override.")] = None,
    sources: Sources = None,
    market: Market = "perp",
    wait_seconds: WaitSeconds = 45,
) -> JobView:
    from mcp_trader.models.device import resolve_device  # torch, xgboost & co. load on first call
    from mcp_trader.models.records import TrainingSummary
    from mcp_trader.models.training import TrainRequest, check_request, train

    home = home_of(ctx)
    async with tool_errors():
        request = TrainRequest(
            kind=kind, variant=variant, symbols=symbols, timeframe=timeframe, horizon=horizon, days=days,
            as_of=as_of, device=device, folds=folds, scheme=scheme, embargo=embargo, barrier=barrier,
            target=target, sources=sources, market=market, **({"xgboost": xgboost} if xgboost else {}),
            **({"lstm": lstm} if lstm else {}),
        )
        check_request(request)
        resolve_device(request.device)  # no CUDA when cuda was asked: a tool error now, not a failed job later

        async def work(control) -> TrainingSummary:
            return TrainingSummary.of(await train(home, request, control.report))

        return await run_as_job(ctx, "train_model", request.model_dump(mode="json"), work, wait_seconds)


async def list_models(ctx: Context) -> list[ModelListing]:
    records = await (await home_of(ctx).models()).records()
    return [ModelListing.of(r) for r in records]


def register(server: MCPServer, inference: bool = False) -> None:
    if not inference:
        _register_training(server)
    server.add_tool(
        list_models, title="List trained models",
        description="Every trained model, newest first: id, kind, variant, symbols, horizon, whether it beat its "
                    "baselines out of sample, its out-of-sample log loss and IC, and its report URI. Instant.",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False),
    )


def _register_training(server: MCPServer) -> None:
    server.add_tool(
        train_model, title="Train a model", description=DESCRIPTION,
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False,
                                    openWorldHint=True),
    )
